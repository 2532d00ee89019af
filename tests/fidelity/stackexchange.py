"""StackExchange: the threads behind each document and what each deviation may change in it.

- ``se-answer-order``: the same answers, ours by numeric score (ties in post order),
  RedPajama's by score string; nothing else moves.
- ``se-score-strings``: only ``question_score``, the dump's string against its number.
- ``se-title-html``: RedPajama's parse of ``Title Body`` as HTML, applied to our title alone.
- ``se-html-layout``: RedPajama's empty ``*`` line per ``<ol>`` (as many as the thread's
  HTML has ``<ol>`` tags), spaces at line ends and blank lines (its text keeps the whitespace
  around the list tags it replaced, blank lines included) are not compared; then ours may
  differ only by a line break where RedPajama glued two words or had a space, and by a space
  between table cells. Indentation, words and the spaces between them stay compared, and the
  language label must be what each text itself is identified as.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from redpajama.filters.html import redpajama_text
from redpajama.slices.base import WorkUnit
from redpajama.slices.stackexchange import StackExchange

from tests.fidelity.harness import Doc, Situation

EMPTY_MARKER = re.compile(r"(?m)^(A: )?\*[ \t]*$")  # a list marker with nothing after it
LINE_BREAKS = re.compile(r"[ \t\r\f\v]*\n[ \t\r\f\v\n]*")
CELL = re.compile(r"<t[dh][\s>]", re.IGNORECASE)


@dataclass
class Answer:
    post_id: int
    score: int
    score_text: str
    html: str


@dataclass
class Thread:
    title: str = ""
    html: str = ""
    score_text: str = ""
    answers: list[Answer] = field(default_factory=list)  # in post order

    @property
    def all_html(self) -> str:
        return "\n".join([self.html, *(answer.html for answer in self.answers)])


def read_threads(inputs: list[str]) -> dict[str, Thread]:
    """Question URL -> its thread, read from the same inputs with the slice's own reader."""
    threads: dict[tuple[str, int], Thread] = {}
    for source in inputs:
        for item in StackExchange().read(WorkUnit(source)):
            if not isinstance(item, tuple):
                continue
            meta, html = item[1]["meta"], item[1]["text"]
            if meta["_parent_id"] is None:
                thread = threads.setdefault((meta["_site"], meta["_post_id"]), Thread())
                thread.title, thread.html, thread.score_text = meta["_title"], html, str(meta["_score_text"])
            else:
                threads.setdefault((meta["_site"], meta["_parent_id"]), Thread()).answers.append(
                    Answer(meta["_post_id"], meta["_score"], str(meta["_score_text"]), html))
    return {f"https://{site}/questions/{post_id}": thread for (site, post_id), thread in threads.items()}


def check_answer_order(before: Doc, after: Doc, situation: Situation) -> str | None:
    """The same question and answers; ours by numeric score descending, ties in post order;
    RedPajama's by the score strings, descending (a stable sort)."""
    thread = situation.context.get(situation.key)
    if before is None or after is None or thread is None:
        return "answer order dropped or added a document"
    count = len(thread.answers)
    ours, theirs = before["text"].split("\nA: "), after["text"].split("\nA: ")
    if len(ours) != count + 1 or len(theirs) != count + 1:
        return f"cannot be split into the question and its {count} answers"
    numeric = sorted(range(count), key=lambda i: -thread.answers[i].score)
    strings = sorted(range(count), key=lambda i: thread.answers[i].score_text, reverse=True)
    text_of = {answer: theirs[position + 1] for position, answer in enumerate(strings)}
    if ours != [theirs[0], *(text_of[answer] for answer in numeric)]:
        return "ours is not RedPajama's question and answers in numeric score order (ties in post order)"
    return situation.same_meta(before, after)


def check_score_strings(before: Doc, after: Doc, situation: Situation) -> str | None:
    """Only ``question_score``: the dump's string in RedPajama's, its number in ours."""
    thread = situation.context.get(situation.key)
    if before is None or after is None or thread is None or before["text"] != after["text"]:
        return "score strings changed more than question_score"
    ours, theirs = before["meta"].get("question_score"), after["meta"].get("question_score")
    if theirs != thread.score_text or ours != int(thread.score_text):
        return f"question_score {ours!r} vs {theirs!r}, the dump says {thread.score_text!r}"
    return situation.same_meta(before, after, changed=("question_score",))


def title_as_html(ref: Doc, ours: Doc, situation: Situation) -> tuple[Doc, Doc]:
    """RedPajama parsed ``Title Body`` as HTML together: markup-like text in a title vanished."""
    thread = situation.context.get(situation.key)
    if ours is None or thread is None:
        return ref, ours
    head = f"Q: {thread.title} "
    if not ours["text"].startswith(head):
        return ref, ours
    return ref, {"text": "Q: " + redpajama_text(thread.title + " ") + ours["text"][len(head):], "meta": ours["meta"]}


def layout(text: str) -> str:
    """Empty list markers out; a run of whitespace with line breaks (blank lines included)
    becomes one line break followed by the next line's indentation."""
    return LINE_BREAKS.sub(lambda match: "\n" + match.group().rsplit("\n", 1)[1], EMPTY_MARKER.sub(r"\1", text))


def added_breaks_only(theirs: str, ours: str, cells: bool) -> str | None:
    """None if ``ours`` is ``theirs`` with line breaks where RedPajama had none or a space (and,
    with ``cells``, a space between table cells); else where they first differ otherwise."""
    i = j = 0
    while i < len(theirs) or j < len(ours):
        rp, mine = theirs[i : i + 1], ours[j : j + 1]
        if rp == mine:
            i, j = i + 1, j + 1
        elif mine == "\n" and rp == " ":
            i, j = i + 1, j + 1
        elif mine == "\n" or (cells and mine == " "):
            j += 1
        else:
            return f"at {i}: {theirs[max(0, i - 30):i + 30]!r} vs {ours[max(0, j - 30):j + 30]!r}"
    return None


def html_layout(ref: Doc, ours: Doc, situation: Situation) -> tuple[Doc, Doc]:
    """Both texts without what ``se-html-layout`` changes, once verified to be only that."""
    thread = situation.context.get(situation.key)
    if ref is None or ours is None or thread is None or ref["text"] == ours["text"]:
        return ref, ours
    surplus = len(EMPTY_MARKER.findall(ref["text"])) - len(EMPTY_MARKER.findall(ours["text"]))
    if surplus != thread.all_html.count("<ol>"):
        return ref, ours
    theirs, mine = layout(ref["text"]), layout(ours["text"])
    if added_breaks_only(theirs, mine, CELL.search(thread.all_html) is not None):
        return ref, ours
    meta = dict(ours["meta"])
    if ref["meta"].get("language") != meta.get("language"):
        if situation.text_meta is None:
            return ref, ours
        for doc in (ref, ours):
            if doc["meta"].get("language") != situation.text_meta(doc["text"])["language"]:
                return ref, ours
        meta["language"] = ref["meta"]["language"]
    return {"text": theirs, "meta": ref["meta"]}, {"text": theirs, "meta": meta}
