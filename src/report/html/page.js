// The page's behaviour, without any framework: the findings filters (severity, node, link; also
// given in the URL fragment, e.g. #severity=error&node=node01&link=etcd), and a self-test that
// counts what the page shows, by walking it, into #selftest (JSON) for readers and the test suite.
"use strict";
(function () {
  var table = document.getElementById("findings-table");
  var rows = table ? Array.prototype.slice.call(table.tBodies[0].rows) : [];
  var fields = { severity: "f-severity", node: "f-node", link: "f-link" };

  function control(name) { return document.getElementById(fields[name]); }

  function wanted() {
    var w = {};
    Object.keys(fields).forEach(function (k) { w[k] = control(k) ? control(k).value.trim() : ""; });
    return w;
  }

  function matches(row, w) {
    if (w.severity && row.dataset.severity !== w.severity) return false;
    if (w.node && (row.dataset.nodes || "").split(" ").indexOf(w.node) < 0) return false;
    if (w.link && (row.dataset.links || "").toLowerCase().indexOf(w.link.toLowerCase()) < 0) return false;
    return true;
  }

  function apply(updateHash) {
    var w = wanted();
    var shown = 0;
    rows.forEach(function (row) {
      row.hidden = !matches(row, w);
      if (!row.hidden) shown++;
    });
    var out = document.getElementById("f-shown");
    if (out) out.textContent = shown + " of " + rows.length + " shown";
    if (updateHash) {
      var p = new URLSearchParams();
      Object.keys(w).forEach(function (k) { if (w[k]) p.set(k, w[k]); });
      var h = p.toString();
      history.replaceState(null, "", h ? "#" + h : location.pathname + location.search);
    }
    selftest();
  }

  function fromHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    Object.keys(fields).forEach(function (k) {
      var c = control(k);
      if (!c) return;
      var v = p.get(k) || "";
      if (c.tagName === "SELECT" && v && !Array.prototype.some.call(c.options, function (o) { return o.value === v; })) {
        // A value the list does not have (a node without findings): add it, so it filters to nothing.
        var o = document.createElement("option");
        o.textContent = v;
        c.appendChild(o);
      }
      c.value = v;
    });
    apply(false);
  }

  function count(list, key) {
    var c = {};
    list.forEach(function (x) { var k = key(x); c[k] = (c[k] || 0) + 1; });
    return c;
  }

  function selftest() {
    var summary = {};
    document.querySelectorAll("#summary [data-count]").forEach(function (dd) {
      summary[dd.dataset.count] = parseInt(dd.textContent, 10);
    });
    var linkRows = Array.prototype.slice.call(document.querySelectorAll("#links-table tbody tr"));
    var arrows = Array.prototype.slice.call(document.querySelectorAll("#graph g.link"));
    var bars = Array.prototype.slice.call(document.querySelectorAll("svg.timeline g.cert"));
    var result = {
      summary: summary,
      findingRows: count(rows, function (r) { return r.dataset.severity; }),
      findingsShown: count(rows.filter(function (r) { return !r.hidden; }), function (r) { return r.dataset.severity; }),
      filter: wanted(),
      linkRows: count(linkRows, function (r) { return r.dataset.status; }),
      arrows: count(arrows, function (a) { return a.dataset.status; }),
      brokenArrows: arrows.filter(function (a) { return a.dataset.status === "broken"; }).map(function (a) {
        var path = a.querySelector("path");
        return { title: a.querySelector("title").textContent, stroke: path ? getComputedStyle(path).stroke : "" };
      }),
      timelineBars: count(bars, function (b) { return b.dataset.ca === "true" ? "ca" : "leaf"; }),
      catalogRows: document.querySelectorAll("#catalog-table tbody tr").length,
      scripts: document.scripts.length,
      errors: window.kubepkiErrors || []
    };
    var pre = document.getElementById("selftest");
    if (pre) pre.textContent = JSON.stringify(result);
  }
  window.kubepkiSelftest = selftest;

  Object.keys(fields).forEach(function (k) {
    var c = control(k);
    if (c) c.addEventListener("input", function () { apply(true); });
  });
  var form = document.getElementById("filters");
  if (form) form.addEventListener("submit", function (e) { e.preventDefault(); });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
