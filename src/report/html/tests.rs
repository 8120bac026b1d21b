use super::*;

#[test]
fn text_from_files_is_escaped_for_html() {
    assert_eq!(
        esc("<script>alert('x')</script> & \"q\""),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
    );
    assert_eq!(esc("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\nc");
}
