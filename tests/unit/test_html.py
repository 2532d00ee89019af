from redpajama.filters.html import html_to_text, redpajama_text


def test_text_in_document_order_with_nested_inline_elements():
    assert html_to_text('<p><em>a <a href="u"><b>B</b></a> c</em> d</p>') == "a B c d"
    assert html_to_text("<p>the german <i>and</i> therefore is<a>Reinheitsgebot</a></p>") == (
        "the german and therefore isReinheitsgebot")


def test_text_directly_inside_a_list_is_kept():
    assert html_to_text("<p>x</p><ol>loose text</ol>") == "x\nloose text"


def test_whitespace_as_beautifulsoup_keeps_it():
    # a whitespace-only string between tags becomes one newline (or one space); text keeps its spaces
    assert html_to_text("<p>One  two.</p>\n\n<p>Three.</p>\n") == "One  two.\nThree.\n"
    assert html_to_text("<p>a</p> <p>b</p>") == "a \nb"  # a space between blocks is not a line break
    assert html_to_text("<pre><code>for x in y:\n\n    print(x &lt; 2)\n</code></pre>") == (
        "for x in y:\n\n    print(x < 2)\n")


def test_blocks_that_touch_and_line_breaks_are_kept_apart():
    assert html_to_text("<p>a</p><p>b</p><h2>c</h2>d") == "a\nb\nc\nd"
    assert html_to_text("one<br>two<br/>\nthree<br><br>four") == "one\ntwo\nthree\n\nfour"
    assert html_to_text("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>") == "a b\nc"


def test_list_items_start_a_line_with_a_marker_in_both_kinds_of_list():
    assert html_to_text("<ul>\n<li>a</li>\n<li>b <i>c</i></li>\n</ul>\n") == "\n\n*a\n\n*b c\n\n"
    assert html_to_text("<ol><li><p>first</p></li><li>second</li></ol>") == "\n*first\n*second"
    # RedPajama gave every <ol> an empty marker of its own and left <li class=...> unmarked
    assert redpajama_text("<ol><li><p>first</p></li><li>second</li></ol>") == "*\n*first\n*second"
    assert redpajama_text('<ul><li class="x">a</li></ul>') == "a"


def test_blockquotes_are_text_like_any_block():
    assert html_to_text("<p>said:</p><blockquote><p>q1</p><p>q2</p></blockquote>") == "said:\nq1\nq2"


def test_no_text_from_comments_scripts_styles_or_templates():
    html = "a<!-- language: python --><script>x=1</script><style>p{}</style><template><b>t</b></template>b"
    assert html_to_text(html) == redpajama_text(html) == "ab"


def test_redpajama_text_glues_what_it_glued():
    assert redpajama_text("<p>a</p><p>b</p>one<br>two") == "abonetwo"
    assert redpajama_text("Title <p>body &amp; more</p>\n") == "Title body & more\n"
    assert redpajama_text("What does <br> do?") == "What does  do?"


def test_empty_and_malformed_input_never_raise():
    assert html_to_text("") == "" and redpajama_text("") == ""
    assert html_to_text("   ") == ""
    assert html_to_text("<p>unclosed <b>bold") == "unclosed bold"
    assert html_to_text("</p></div>stray<") == "stray<"
