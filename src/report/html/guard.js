// Runs before anything else: every script error, and anything the page's Content-Security-Policy
// blocked, is written into the page (#page-errors), where a reader and the test suite see it.
"use strict";
window.kubepkiErrors = [];
function kubepkiRecord(text) {
  window.kubepkiErrors.push(text);
  if (window.kubepkiSelftest) window.kubepkiSelftest();
}
window.addEventListener("error", function (e) {
  kubepkiRecord("error: " + (e.message || String(e.error)));
});
document.addEventListener("securitypolicyviolation", function (e) {
  kubepkiRecord("blocked by the page's policy: " + e.violatedDirective);
});
