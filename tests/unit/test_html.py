from redpajama.filters.html import html_to_text


def test_paragraphs_are_blocks_separated_by_a_blank_line():
    assert html_to_text("<p>One  <b>two</b>\nthree.</p><p>Four.</p>") == "One two three.\n\nFour."


def test_lists_keep_one_item_per_line():
    assert html_to_text("<ul><li>a</li><li>b <i>c</i></li></ul>") == "* a\n* b c"
    assert html_to_text("<ol><li>first</li><li>second</li></ol>") == "1. first\n2. second"


def test_code_blocks_keep_lines_and_indentation():
    html = "<p>Try:</p><pre><code>for x in y:\n    print(x &lt; 2)\n</code></pre>"
    assert html_to_text(html) == "Try:\n\nfor x in y:\n    print(x < 2)"


def test_line_breaks_blockquotes_and_entities():
    assert html_to_text("a<br>b &amp; c") == "a\nb & c"
    assert html_to_text("<blockquote><p>q1</p><p>q2</p></blockquote>") == "> q1\n>\n> q2"


def test_empty_and_malformed_input_never_raise():
    assert html_to_text("") == ""
    assert html_to_text("   ") == ""
    assert html_to_text("<p>unclosed <b>bold") == "unclosed bold"
