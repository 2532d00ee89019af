import json
from pathlib import Path

from redpajama.core.records import Drop
from redpajama.slices import stackexchange as se

LISTING = json.loads((Path(__file__).parents[1] / "fixtures" / "stackexchange-listing.json").read_text())


def test_sites_ranked_by_archive_size_with_stackoverflow_parts_summed():
    chosen = se.select_sites(LISTING, 3)
    assert [(s.site, s.archive, s.size) for s in chosen] == [
        ("stackoverflow.com", "stackoverflow.com-Posts.7z", 91000),
        ("beta.stackexchange.com", "beta.stackexchange.com.7z", 9000),
        ("delta.com", "delta.com.7z", 7000),  # ties broken by name
    ]
    assert len(se.select_sites(LISTING, 28)) == 5  # only real site archives count


def test_site_names_from_archives_and_paths():
    assert se.site_of_archive("beer.stackexchange.com.7z") == "beer.stackexchange.com"
    assert se.site_of_archive("stackoverflow.com-Posts.7z") == "stackoverflow.com"
    assert se.site_of_archive("Sites.xml") is None
    assert se._site_from_path("/d/history.meta.stackexchange.com-2018/Posts.xml") == "history.meta.stackexchange.com"
    assert se._site_from_path("gs://b/mathoverflow.net.7z") == "mathoverflow.net"


def post(post_id, body, parent=None, title="", score=0, when="2020-01-01T00:00:00"):
    line = f'<row Id="{post_id}" Body="{body}" Score="{score}" LastActivityDate="{when}"'
    line += f' ParentId="{parent}"' if parent else ""
    line += f' Title="{title}"' if title else ""
    return se._post_record((line + " />").encode(), "beer.stackexchange.com")[1]


def test_answers_sorted_by_numeric_score_not_as_strings():
    question = post(1, "&lt;p&gt;Which?&lt;/p&gt;", title="Best beer", score=5)
    answers = [post(2, "nine", 1, score=9), post(3, "ten", 1, score=10), post(4, "minus", 1, score=-3),
               post(5, "hundred", 1, score=100), post(6, "two", 1, score=2, when="2021-05-06T00:00:00")]
    for record in [question, *answers]:
        se.CleanHtml().apply(record)
    assert question["text"] == "Best beer Which?"
    kept, *drops = se.JoinAnswers(None)([question], answers)
    assert kept["text"] == "Q: Best beer Which?\nA: hundred\nA: ten\nA: nine\nA: two\nA: minus"
    assert kept["meta"] == {
        "language": "", "url": "https://beer.stackexchange.com/questions/1", "timestamp": "2021-05-06",
        "source": "stackexchange", "question_score": 5, "id": "stackexchange/beer.stackexchange.com/1",
    }
    assert drops == [Drop("answer_merged")] * 5


def test_redpajama_string_order_and_string_scores():
    question = post(1, "q", title="T", score=5)
    answers = [post(2, "nine", 1, score=9), post(3, "ten", 1, score=10), post(4, "also nine", 1, score=9)]
    kept, *_ = se.JoinAnswers(None, string_order=True, string_scores=True)([question], answers)
    assert kept["text"] == "Q: q\nA: nine\nA: also nine\nA: ten"  # "9" > "10"; ties keep post order
    assert kept["meta"]["question_score"] == "5"


def test_question_title_then_body_and_redpajamas_html_text():
    question = post(1, "&lt;p&gt;a&lt;/p&gt;&lt;p&gt;b&lt;/p&gt;", title="What does &lt;br&gt; do?")
    assert se.CleanHtml().apply(dict(question, meta=dict(question["meta"])))["text"] == "What does <br> do? a\nb"
    assert se.CleanHtml(redpajama=True).apply(question)["text"] == "What does  do? ab"


def test_question_only_orphans_and_dump_date():
    question = se.CleanHtml().apply(post(1, "body", title="T"))
    kept, = se.JoinAnswers("2023-03-29")([question], [])
    assert kept["text"] == "Q: T body" and kept["meta"]["timestamp"] == "2023-03-29"
    assert se.JoinAnswers(None)([], [post(9, "x", 1)]) == [Drop("orphan_answer")]


def test_select_posts_keeps_questions_and_answers_only():
    assert se.SelectPosts().apply(post(1, "b", title="T"))["meta"]["_title"] == "T"
    assert se.SelectPosts().apply(post(2, "b", parent=1))["meta"]["_parent_id"] == 1
    assert se.SelectPosts().apply(post(3, "tag wiki")) == Drop("not_question_or_answer")


def test_bad_rows_fail_alone_and_dtd_is_never_loaded():
    data = (
        b"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE posts SYSTEM 'http://x.invalid/posts.dtd'>\n"
        b"<posts>\n  <row Id=\"1\" Title=\"T\" Body=\"ok\" />\n  <row Id=\"2\" Body=\"broken />\n"
        b"  <row Id=\"3\" Body=\"caf\xe9\" />\n</posts>\n"
    )
    items = list(se.read_posts([data], "Posts.xml", "x.com"))
    assert [item[0] for item in items if isinstance(item, tuple)] == ["x.com/000000000001"]
    offsets = [data.index(row) - 3 for row in (b'<row Id="2"', b'<row Id="3"')]  # after the BOM
    assert [(f.reason, f.location) for f in items if not isinstance(f, tuple)] == [
        ("invalid_row", f"row at byte {offsets[0]}"), ("invalid_row", f"row at byte {offsets[1]}")]
    assert [f.reason for f in se.read_posts([b""], "e", "x")] == ["empty_input"]
    assert [f.reason for f in se.read_posts([b"hello\n"], "e", "x")] == ["not_a_posts_file"]
