"""StackExchange HTML to text: candidate extractors against RedPajama's own output on beer.SE.

Each candidate turns every post of the shared beer.stackexchange.com ``Posts.xml`` into text;
threads are laid out as RedPajama laid them out (``Q: title body``, answers in its score
order) and compared with RedPajama's 663 reference threads:

- ``same_characters``: share of threads whose text has the same characters as RedPajama's,
  whitespace and list markers that mark nothing aside (what the fidelity test requires);
- ``word_agreement``: matching words over all words (difflib on whitespace-split words);
- ``mb_per_s``: post HTML converted per second, one core.

Candidates: this project's extractor (lxml's parser events, ``filters/html.py``), lxml's
``itertext()`` on the parsed fragment, and resiliparse's ``extract_plain_text``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import time
from collections import defaultdict
from pathlib import Path

import lxml.html
from redpajama.filters.html import html_to_text
from redpajama.slices.base import WorkUnit
from redpajama.slices.stackexchange import StackExchange

from bench.results_io import machine, publish

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
POSTS = SHARED / "stackexchange/beer.stackexchange.com/Posts.xml"
REFERENCE = SHARED.parent / "reference/rpv1-outputs/stackexchange-beer.jsonl"
EMPTY_ITEM = re.compile(r"(?m)^(A: )?[ \t]*\*[ \t]*$")


def lxml_itertext(html: str) -> str:
    if not html.strip():
        return ""
    return "".join(lxml.html.fragment_fromstring(html, create_parent="div").itertext())


def resiliparse_text(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, preserve_formatting=True, main_content=False, list_bullets=True,
                              alt_texts=False, links=False, form_fields=False, noscript=True)


CANDIDATES = {"lxml parser events (ours)": html_to_text, "lxml itertext": lxml_itertext,
              "resiliparse": resiliparse_text}


def threads() -> tuple[dict[str, dict], dict[str, list[dict]]]:
    questions, answers = {}, defaultdict(list)
    for item in StackExchange().read(WorkUnit(str(POSTS))):
        if not isinstance(item, tuple):
            continue
        meta = item[1]["meta"]
        post = {"id": meta["_post_id"], "title": meta["_title"], "score": meta["_score_text"], "body": item[1]["text"]}
        if meta["_parent_id"] is None:
            questions[str(meta["_post_id"])] = post
        else:
            answers[str(meta["_parent_id"])].append(post)
    return questions, answers


def layout_free(text: str) -> str:
    return re.sub(r"\s+", "", EMPTY_ITEM.sub(r"\1", text))


def main() -> dict:
    reference = {json.loads(line)["meta"]["url"].rsplit("/", 1)[1]: json.loads(line)["text"]
                 for line in REFERENCE.read_text("utf-8").splitlines()}
    questions, answers = threads()
    bodies = [post["body"] for post in questions.values()] + [a["body"] for group in answers.values() for a in group]
    megabytes = sum(len(body.encode("utf-8")) for body in bodies) / 1e6
    figures: dict = {"benchmark": "html_text", "threads": len(reference), "html_mb": round(megabytes, 2)}
    for name, extract in CANDIDATES.items():
        started = time.perf_counter()
        for body in bodies:
            extract(body)
        seconds = time.perf_counter() - started
        same = matched = total = 0
        for qid, expected in reference.items():
            question = questions[qid]
            ranked = sorted(sorted(answers[qid], key=lambda a: a["id"]), key=lambda a: a["score"], reverse=True)
            text = "Q: " + question["title"] + " " + extract(question["body"])
            text += "".join("\nA: " + extract(answer["body"]) for answer in ranked)
            same += layout_free(text) == layout_free(expected)
            words, expected_words = text.split(), expected.split()
            matcher = difflib.SequenceMatcher(None, expected_words, words, autojunk=False)
            matched += sum(block.size for block in matcher.get_matching_blocks())
            total += max(len(words), len(expected_words))
        figures[name] = {"same_characters": round(same / len(reference), 4),
                         "word_agreement": round(matched / total, 4),
                         "mb_per_s": round(megabytes / seconds, 2)}
    figures["machine"] = machine()
    return publish("html_text", figures)


if __name__ == "__main__":
    main()
