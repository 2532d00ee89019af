"""arXiv: what the default output must hold, worked out from the sources, and a check per deviation.

RedPajama's text of a paper is every ``.tex`` file in archive order, each cut on its own,
joined by newlines. Ours is the paper's documents, each assembled from its ``\\documentclass``
file along ``\\input``/``\\include``/``\\subfile``/``\\import`` and cut once. Rerunning with
``--redpajama-compat archive-order`` gives RedPajama's layout but says nothing about ours, so
the ``arxiv-assembly`` check rebuilds both from the paper's files (:func:`documents`,
:func:`files_alone`) and requires:

- the default text to be the paper's documents, each whole and contiguous, in any order; a
  document may be left out only when every line of it is in the text anyway, or when it is
  another build of a kept one (most of its lines come from files the kept one reads, as a
  journal and a preprint build of one paper, and those lines are all in the text);
- the ``archive-order`` text to be the files cut one by one, in archive order.

A lost ``\\input`` file, a lost root document or text from nowhere fails the first.

The checks of the later switches compare two runs in archive order, line by line: the cut
may only move where a file's text starts (a sectioning command) or ends (an appendix or
bibliography command); RedPajama's comment expression may only eat the character before an
inline comment or keep a line-final ``%``; its macro templates may only leave a macro's name
where ours has its value (or use another definition of it); ``utf8-only`` may only drop a
paper with a file that is not UTF-8.

Comments are removed and macros expanded with the product's own functions: the
``arxiv-comments`` and ``arxiv-macros`` checks hold those to RedPajama's behaviour.
"""

from __future__ import annotations

import difflib
import gzip
import io
import os
import posixpath
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# RedPajama's macro expressions as its cleaner wrote them; ours comments and macros are the
# product's, held to RedPajama's by the arxiv-comments and arxiv-macros checks.
from redpajama.filters.latex import RP_DEF, RP_NEWCOMMAND, expand_macros, macros, strip_comments

from tests.fidelity.harness import Doc, Situation

ARXIV_MTIME = 1577836800  # 2020-01-01T00:00:00Z, as the reference tar was packed
NEW_ID = re.compile(r"^(\d{4}\.\d{4,5})")

# The deviation table's rows, as expressions of this module (not the product's).
SECTION = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\*?(?:\[[^\]]*\])?\{")
END = re.compile(r"\\appendix(?![a-zA-Z@])|\\begin\{(?:references|REFERENCES|thebibliography)\}|\\bibliography\{")
ANY_END = re.compile(END.pattern + r"|\\appendix")  # RedPajama's \appendix also matched \appendixname
SECTION_COMMAND = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)(?![a-zA-Z@])")
BEGIN_DOCUMENT = "\\begin{document}"
END_DOCUMENT = "\\end{document}"
DOCUMENTCLASS = re.compile(r"\\documentclass(?![a-zA-Z@])")
INCLUDING = re.compile(r"\\(input|include|subfile|import|subimport|inputfrom|includefrom|subinputfrom|subincludefrom)"
                       r"(?![a-zA-Z@])")
BRACED = re.compile(r"\s*\{([^{}]*)\}")
BARE = re.compile(r"\s*([^\s{}\\%]+)")


# --- the inputs -----------------------------------------------------------------------------


def pack_bulk_tar(folders: list[Path], target: Path, yymm: str = "2001") -> Path:
    """A bulk source tar as the reference run had it: ``YYMM/<id>.gz`` per paper, each a gzipped tar
    of the folder's files in sorted path order; ``<id>`` is the arXiv id a folder name starts with."""
    with tarfile.open(target, "w") as outer:
        for folder in folders:
            match = NEW_ID.match(folder.name)
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tar:
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    _add(tar, str(path.relative_to(folder)), path.read_bytes())
            _add(outer, f"{yymm}/{match.group(1) if match else folder.name}.gz", gzip.compress(inner.getvalue(), mtime=0))
    return target


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), ARXIV_MTIME
    tar.addfile(info, io.BytesIO(data))


@dataclass
class Paper:
    """A paper's ``.tex`` files in archive order: raw bytes and text (UTF-8, else Latin-1)."""

    raw: dict[str, bytes]

    @property
    def texts(self) -> dict[str, str]:
        return {name: _decode(data) for name, data in self.raw.items()}

    def not_utf8(self) -> list[str]:
        bad = []
        for name, data in self.raw.items():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(name)
        return bad


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_papers(inputs: Iterable[str]) -> dict[str, Paper]:
    """arXiv id -> its ``.tex`` files, from bulk source tars (``YYMM/<id>.gz``) or paper folders."""
    papers: dict[str, Paper] = {}
    for source in inputs:
        path = Path(source)
        if path.is_dir():
            folders = [path] if any(path.glob("*.tex")) else sorted(p for p in path.iterdir() if p.is_dir())
            for folder in folders:
                match = NEW_ID.match(folder.name)
                papers[match.group(1) if match else folder.name] = Paper(_folder_files(folder))
            continue
        with tarfile.open(path) as outer:
            for member in outer:
                stem, suffix = posixpath.splitext(posixpath.basename(member.name))
                if member.isfile() and suffix == ".gz":
                    papers[_old_style(stem)] = Paper(_gz_files(outer.extractfile(member).read()))
    return papers


def _folder_files(folder: Path) -> dict[str, bytes]:
    """A folder's ``.tex`` files in the order the slice reads them: each folder's files by name,
    then its sub-folders by name (hidden ones skipped); links are not followed."""
    files = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root, name)
            if name.endswith(".tex") and path.is_file() and not path.is_symlink():
                files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def _old_style(stem: str) -> str:
    match = re.match(r"^([a-z\-]+(?:\.[A-Z]{2})?)(\d{7})$", stem)
    return f"{match.group(1)}/{match.group(2)}" if match else stem


def _gz_files(payload: bytes) -> dict[str, bytes]:
    data = gzip.decompress(payload)
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return {posixpath.normpath(m.name): tar.extractfile(m).read()
                    for m in tar if m.isfile() and m.name.endswith(".tex")}
    except tarfile.TarError:
        return {"main.tex": data}


# --- documents: what the default output must hold --------------------------------------------


@dataclass
class Document:
    root: str
    files: list[str]  # in the order the document reads them
    lines: list[str]  # its text after the cut, as compared (see :func:`compared_lines`)
    origins: list[str]  # the file each line comes from

    def shared_lines(self, files: set[str]) -> list[str]:
        return [line for line, origin in zip(self.lines, self.origins, strict=True) if origin in files]


Segments = list[tuple[str, str]]  # (file, text) in reading order


def compared_lines(text: str) -> list[str]:
    """The lines of a text with trailing spaces removed, blank lines left out: how text is
    compared here (where an ``\\input`` splits a line, blank lines appear)."""
    return [line.rstrip() for line in text.split("\n") if line.strip()]


def _argument(text: str, at: int) -> tuple[str | None, int]:
    match = BRACED.match(text, at)
    return (match.group(1), match.end()) if match else (None, at)


def includes(text: str) -> list[tuple[int, int, str, str]]:
    """``(start, end, command, name)`` of every include command of a comment-free text."""
    found = []
    for match in INCLUDING.finditer(text):
        command, end = match.group(1), match.end()
        if command in ("input", "include"):
            name, end = _argument(text, end)
            if name is None:
                bare = BARE.match(text, end)
                if not bare:
                    continue
                name, end = bare.group(1), bare.end()
        elif command == "subfile":
            name, end = _argument(text, end)
        else:  # \import{folder}{file} and its relatives
            folder, end = _argument(text, end)
            name, end = _argument(text, end)
            name = None if folder is None or name is None else posixpath.join(folder.strip(), name.strip())
        if name is not None:
            found.append((match.start(), end, command, name.strip()))
    return found


def resolve(files: Mapping[str, str], current: str, name: str) -> str | None:
    """The file an include names: relative to the including file, else to the project root,
    as written or with ``.tex``."""
    for candidate in (name, name + ".tex"):
        for base in (posixpath.dirname(current), ""):
            path = posixpath.normpath(posixpath.join(base, candidate))
            if path in files:
                return path
    return None


def _slice(segments: Segments, start: int, end: int) -> Segments:
    """The part of ``segments`` between two offsets of their joined text."""
    kept, at = [], 0
    for name, text in segments:
        low, high = max(start - at, 0), min(end - at, len(text))
        if low < high:
            kept.append((name, text[low:high]))
        at += len(text)
    return kept


def _assemble(files: Mapping[str, str], root: str) -> tuple[Segments, list[str]]:
    """A document's source with each include replaced by its file (once per document), as
    segments that remember their file, and the files in reading order."""
    order: list[str] = []

    def expand(name: str) -> Segments:
        order.append(name)
        text, segments, at = files[name], [], 0
        for start, end, command, target in includes(text):
            segments.append((name, text[at:start]))
            at = end
            path = resolve(files, name, target)
            if path is None or path in order:
                continue
            included = expand(path)
            joined = "".join(part for _, part in included)
            if command == "subfile" and BEGIN_DOCUMENT in joined:  # a subfile's document body
                body = joined.index(BEGIN_DOCUMENT) + len(BEGIN_DOCUMENT)
                close = joined.find(END_DOCUMENT, body)
                included = _slice(included, body, close if close >= 0 else len(joined))
            segments += [(name, "\n"), *included, (name, "\n")]
        segments.append((name, text[at:]))
        return segments

    return expand(root), order


def cut(text: str) -> tuple[int, int] | None:
    """From the first sectioning command after ``\\begin{document}`` to the first appendix or
    bibliography command; None when there is no sectioning command."""
    body = text.find(BEGIN_DOCUMENT)
    start = SECTION.search(text, body + len(BEGIN_DOCUMENT) if body >= 0 else 0)
    if start is None:
        return None
    end = END.search(text, start.start())
    return start.start(), end.start() if end else len(text)


def _lines(segments: Segments) -> tuple[list[str], list[str]]:
    """The compared lines of the segments' text and the file each comes from (where it starts)."""
    lines, origins, current, origin = [], [], "", ""
    for name, text in segments:
        for number, part in enumerate(text.split("\n")):
            if number:
                if current.strip():
                    lines.append(current.rstrip())
                    origins.append(origin)
                current, origin = "", ""
            if not origin and part.strip():
                origin = name
            current += part
    if current.strip():
        lines.append(current.rstrip())
        origins.append(origin)
    return lines, origins


def documents(texts: Mapping[str, str]) -> list[Document]:
    """Every root document of a paper: a ``\\documentclass`` file that no other document inputs
    (a file with no ``\\documentclass`` that inputs one, such as a wrapper setting options,
    does not make it part of another document). A paper of one file without a preamble is
    that file."""
    clean = {name: strip_comments(text) for name, text in texts.items()}
    classes = [name for name, text in clean.items() if DOCUMENTCLASS.search(text)]
    if not classes and len(clean) == 1:
        classes = list(clean)
    assembled = {name: _assemble(clean, name) for name in classes}
    inside_other = {name for root, (_, order) in assembled.items() for name in order[1:] if name != root}
    table = macros(texts)
    found = []
    for root in classes:
        if root in inside_other:
            continue
        segments, order = assembled[root]
        window = cut("".join(text for _, text in segments))
        kept = _slice(segments, *window) if window else []
        lines, origins = _lines([(name, expand_macros(text, table)) for name, text in kept])
        found.append(Document(root, order, lines, origins))
    return found


def files_alone(texts: Mapping[str, str]) -> list[str]:
    """The ``archive-order`` text: each file cut on its own (the same expressions), in archive order."""
    table, pieces = macros(texts), []
    for text in texts.values():
        body = text.find(BEGIN_DOCUMENT)
        start = SECTION.search(text, body + len(BEGIN_DOCUMENT) if body >= 0 else 0)
        piece = ""
        if start is not None:
            piece = strip_comments(text[start.start() :])
            end = END.search(piece)
            piece = piece[: end.start()] if end else piece
        pieces.append(expand_macros(piece, table))
    return compared_lines("\n".join(pieces))


def match_documents(lines: list[str], found: list[Document]) -> tuple[list[Document], str | None]:
    """The documents ``lines`` is made of, and what is wrong if anything: the text must be
    documents of ``found``, each whole and contiguous, in some order; a document left out must
    have every line in the text anyway, or be another build of a kept one (most of its lines
    come from files a kept document reads, and those lines are all in the text)."""
    position, used = 0, []
    while position < len(lines):
        fits = [d for d in found if d not in used and d.lines and lines[position : position + len(d.lines)] == d.lines]
        if not fits:
            return used, _mismatch(lines, position, [d for d in found if d not in used and d.lines])
        used.append(max(fits, key=lambda d: len(d.lines)))
        position += len(used[-1].lines)
    read = {name for document in used for name in document.files}
    missing = []
    for document in found:
        if document in used or not document.lines or _subsequence(document.lines, lines):
            continue
        shared = document.shared_lines(read)
        if 2 * len(shared) > len(document.lines) and _subsequence(shared, lines):
            continue
        line = next((line for line in document.lines if line not in lines), document.lines[0])
        missing.append(f"{document.root} ({len(document.files)} files; {line[:60]!r} is not in the text)")
    return used, ("missing documents: " + ", ".join(missing)) if missing else None


def _subsequence(needle: list[str], haystack: list[str]) -> bool:
    items = iter(haystack)
    return all(any(line == other for other in items) for line in needle)


def _mismatch(lines: list[str], position: int, candidates: list[Document]) -> str:
    if not candidates:
        return f"text from line {position} belongs to no document: {lines[position][:80]!r}"
    best = max(candidates, key=lambda d: _common_prefix(lines[position:], d.lines))
    at = _common_prefix(lines[position:], best.lines)
    if at < len(best.lines):
        expected = f"{best.lines[at][:80]!r} from {best.origins[at]}"
    else:
        expected = "the end of the document"
    found = repr(lines[position + at][:80]) if position + at < len(lines) else "the end of the text"
    return f"document {best.root} ({len(best.files)} files) differs at its line {at}: expected {expected}, found {found}"


def _common_prefix(a: list[str], b: list[str]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _paper(situation: Situation) -> Paper | None:
    return situation.context.get(situation.key)


def check_assembly(before: Doc, after: Doc, situation: Situation) -> str | None:
    """Default: the paper's documents; ``archive-order``: its files cut one by one."""
    paper = _paper(situation)
    if paper is None:
        return "the paper is not in the inputs read for the check"
    texts = paper.texts
    found = documents(texts)
    used: list[Document] = []
    if before is None:
        if any(d.lines for d in found):
            return "dropped, but its documents have text: " + ", ".join(d.root for d in found if d.lines)
    else:
        used, problem = match_documents(compared_lines(before["text"]), found)
        if problem:
            return problem
    if after is not None and compared_lines(after["text"]) != files_alone(texts):
        return "the archive-order text is not the files cut one by one in archive order"
    others = [d.root for d in found if d.lines and d not in used]
    situation.note(f"{situation.key}: " + "; ".join(f"{d.root} with {len(d.files) - 1} inputs" for d in used)
                   + (f" (another build left out: {', '.join(others)})" if others else "")
                   + f"; RedPajama: {len(texts)} files alone")
    return situation.same_meta(before, after)


# --- the switches after archive-order ------------------------------------------------------------


def check_cut(before: Doc, after: Doc, situation: Situation) -> str | None:
    """Only where a file's text starts or ends moved: every differing stretch of lines begins
    with a sectioning command where the text starts later, or an end command where it stops."""
    if before is None or after is None:
        return _dropped(before, after, "the cut expressions")
    ours, theirs = before["text"].split("\n"), after["text"].split("\n")
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ours, theirs, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        extra_ours, extra_theirs = "\n".join(ours[i1:i2]), "\n".join(theirs[j1:j2])
        if not (_window_edge(extra_ours, extra_theirs) or _window_edge(extra_theirs, extra_ours)):
            return f"lines {i1}-{i2} differ beyond a moved start or end: {extra_ours[:60]!r} vs {extra_theirs[:60]!r}"
    return situation.same_meta(before, after)


def _window_edge(longer: str, shorter: str) -> bool:
    """``longer`` is ``shorter`` with text before it that starts at a sectioning command (the
    text starts earlier) and/or text after it that starts at an end command (it stops later)."""
    if not shorter.strip():  # a file with text under one expression only, or an end at a line's start
        return SECTION_COMMAND.match(longer.lstrip("\n")) is not None or ANY_END.match(longer.lstrip("\n")) is not None
    if longer.startswith(shorter):
        head, tail = "", longer[len(shorter) :]
    elif longer.endswith(shorter):
        head, tail = longer[: -len(shorter)], ""
    elif shorter in longer:
        head, _, tail = longer.partition(shorter)
    else:
        return False
    return (not head or SECTION_COMMAND.match(head) is not None) and (not tail or ANY_END.match(tail) is not None)


def check_comments(before: Doc, after: Doc, situation: Situation) -> str | None:
    """Line for line, RedPajama's line is ours less its last character (eaten before ``%``) or
    ours plus a ``%`` (a line-final ``%`` it kept)."""
    if before is None or after is None:
        return _dropped(before, after, "the comment expressions")
    ours, theirs = before["text"].split("\n"), after["text"].split("\n")
    if len(ours) != len(theirs):
        return f"{len(ours)} lines became {len(theirs)}"
    for number, (mine, rp) in enumerate(zip(ours, theirs, strict=True)):
        if mine != rp and not (rp == mine[:-1] or rp == mine + "%"):
            return f"line {number}: {mine[:80]!r} vs {rp[:80]!r} is not a comment's edge"
    return situation.same_meta(before, after)


def macro_table(texts: Mapping[str, str]) -> dict[str, set[str]]:
    """Every argument-less macro definition of the files, with or without comments: name -> values."""
    table: dict[str, set[str]] = {}
    for text in texts.values():
        for source in (text, strip_comments(text)):
            for pattern in (RP_NEWCOMMAND, RP_DEF):
                for name, value in pattern.findall(source):
                    table.setdefault(name, set()).add(value)
    return table


def _unexpanded(line: str, table: Mapping[str, set[str]]) -> str:
    pairs = sorted(((value, name) for name, values in table.items() for value in values if value),
                   key=lambda pair: -len(pair[0]))
    for value, name in pairs:
        line = line.replace(value, name)
    return line


def check_macros(before: Doc, after: Doc, situation: Situation) -> str | None:
    """A paper RedPajama dropped has a macro value its ``re.sub`` template rejects; otherwise the
    lines differ only by a macro's name against one of its values."""
    paper = _paper(situation)
    if paper is None:
        return "the paper is not in the inputs read for the check"
    texts = paper.texts
    if after is None:
        failing = [name for name, values in macro_table(texts).items() for value in values if _bad_template(value)]
        return None if before is not None and failing else "dropped without a macro value RedPajama's re.sub rejects"
    if before is None:
        return "only in the run with RedPajama's macros"
    table = macro_table(texts)
    ours, theirs = before["text"].split("\n"), after["text"].split("\n")
    if len(ours) != len(theirs):
        return f"{len(ours)} lines became {len(theirs)}"
    for number, (mine, rp) in enumerate(zip(ours, theirs, strict=True)):
        if mine != rp and _unexpanded(mine, table) != _unexpanded(rp, table):
            return f"line {number}: {mine[:80]!r} vs {rp[:80]!r} differ by more than macros"
    return situation.same_meta(before, after)


def _bad_template(value: str) -> bool:
    try:
        re.sub("x", value.encode("unicode-escape").decode("utf-8"), "x")
    except re.error:
        return True
    return False


def check_latin1(before: Doc, after: Doc, situation: Situation) -> str | None:
    """RedPajama dropped exactly the papers with a ``.tex`` file that is not UTF-8."""
    paper = _paper(situation)
    if before is None or after is not None or paper is None or not paper.not_utf8():
        return "utf8-only changed a paper without a file that is not UTF-8"
    situation.note(f"{situation.key}: not UTF-8: {', '.join(paper.not_utf8())}")
    return None


def _dropped(before: Doc, after: Doc, what: str) -> str:
    return f"{what} {'dropped' if after is None else 'added'} the document"
