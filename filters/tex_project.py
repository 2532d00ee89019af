"""A LaTeX project's documents: its root files, the files each one inputs, and each assembled.

A root is a ``.tex`` file with ``\\documentclass`` (or LaTeX 2.09's ``\\documentstyle``) that no
other such file inputs, directly or through others: the paper, and beside it perhaps a
supplement, a reply to referees or a cover letter compiled on their own (a wrapper without
``\\documentclass`` that sets options and inputs the paper is no document of its own). The
main document comes first: the root with the most TeX (comments aside), counting the files it
inputs, directly or not; the others follow in name order, the order arXiv assembles several
top-level files in. Each document is kept whole, except another build of the paper: a root
whose files an earlier document already reads make up most of its TeX (a journal and a
preprint version inputting the same text) is left out, so that text is kept once.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redpajama.filters.tex_scan import Include, document_body, includes

DOCUMENTCLASS = re.compile(r"(?m)^[^%\n]*\\document(?:class|style)")
MAX_INCLUDE_DEPTH = 20
HEAVIEST = 1 << 62  # weights saturate here: a file input twice counts twice, so they can grow fast


def resolve(files: Mapping[str, str], current: str, target: str) -> str | None:
    """The project file an include in ``current`` names: relative to its folder, then to the top."""
    target = target.strip()
    base = posixpath.dirname(current)
    for name in (target, target + ".tex"):
        for candidate in (posixpath.normpath(posixpath.join(base, name)), posixpath.normpath(name)):
            if candidate in files:
                return candidate
    return None


@dataclass(frozen=True)
class Parsed:
    """One file with its comments removed, and its include commands with the file each names."""

    text: str
    links: tuple[tuple[Include, str | None], ...]
    targets: tuple[str, ...]  # the files it inputs, each once, in the order it first names them


class Project:
    """A paper's files (name -> TeX source); ``strip`` removes comments under the cleaning rules."""

    def __init__(self, files: Mapping[str, str], strip: Callable[[str], str]):
        self.files = files
        self.strip = strip
        self._parsed: dict[str, Parsed] = {}

    def parsed(self, name: str) -> Parsed:
        if name not in self._parsed:
            text = self.strip(self.files[name])
            links = tuple((include, resolve(self.files, name, include.name)) for include in includes(text))
            targets = tuple(dict.fromkeys(target for _, target in links if target is not None))
            self._parsed[name] = Parsed(text, links, targets)
        return self._parsed[name]

    def targets(self, name: str) -> tuple[str, ...]:
        return self.parsed(name).targets

    def roots(self) -> list[str]:
        """Files to assemble documents from, in order: the roots (the main one first, then by
        name), then any other ``\\documentclass`` file (one input only from a file no document
        reaches, or in a cycle), whose text would otherwise be lost. A project without
        ``\\documentclass`` is a document only when it is a single ``.tex`` file."""
        tex = sorted(name for name in self.files if name.endswith(".tex"))
        candidates = [name for name in tex if DOCUMENTCLASS.search(self.files[name])]
        if not candidates:
            return tex if len(tex) == 1 else []
        inputs = self.reached(candidates)
        roots = [name for name in candidates if name not in inputs]
        if roots:
            weight = self.weights(roots)
            main = max(roots, key=lambda name: (weight[name], [-ord(c) for c in name]))  # ties: first name
            roots = [main] + [name for name in roots if name != main]
        return roots + [name for name in candidates if name in inputs]

    def reached(self, starts: list[str]) -> set[str]:
        """Files that one of ``starts`` inputs, directly or through others (itself only by a cycle)."""
        reached: set[str] = set()
        pending = [target for start in starts for target in self.targets(start) if target != start]
        while pending:
            name = pending.pop()
            if name not in reached:
                reached.add(name)
                pending.extend(target for target in self.targets(name) if target not in reached)
        return reached

    def weights(self, names: list[str]) -> dict[str, int]:
        """Each file's length plus the weights of the files it inputs (a cycle is cut where it
        closes), computed once per file without recursion."""
        weight: dict[str, int] = {}
        for start in names:
            if start in weight:
                continue
            stack, open_names = [(start, iter(self.targets(start)))], {start}
            while stack:
                name, children = stack[-1]
                child = next((c for c in children if c not in weight and c not in open_names), None)
                if child is not None:
                    open_names.add(child)
                    stack.append((child, iter(self.targets(child))))
                    continue
                stack.pop()
                open_names.discard(name)
                own = len(self.parsed(name).text)
                weight[name] = min(HEAVIEST, own + sum(weight.get(target, 0) for target in self.targets(name)))
        return weight

    def assemble(self, root: str, used: set[str]) -> str:
        """``root``, comments removed, with every include replaced by the file it names unless
        that file is in ``used`` (already in the document; ``used`` grows); a subfile by its
        document body."""

        def expand(name: str, depth: int) -> str:
            used.add(name)
            parsed = self.parsed(name)
            pieces, last = [], 0
            for include, target in parsed.links:
                pieces.append(parsed.text[last : include.start])
                last = include.end
                if target is None or target in used or depth >= MAX_INCLUDE_DEPTH:
                    continue
                included = expand(target, depth + 1)
                if include.kind == "subfile":  # a subfile is a document of its own: its body is what goes in
                    body = document_body(included)
                    included = included if body is None else body
                pieces.append("\n" + included + "\n")
            pieces.append(parsed.text[last:])
            return "".join(pieces)

        return expand(root, 0)

    def documents(self) -> list[str]:
        """Every document assembled whole, in :meth:`roots` order. A root already inside an
        earlier document is skipped, and so is another build of the paper: a root whose files
        read by an earlier document weigh more than its own new ones (a journal and a preprint
        version inputting the same text). Each file weighs its length plus one; so each root
        is weighed in time linear in its new files, and kept documents are at most twice
        their new text: all of it linear in the project."""
        read: set[str] = set()  # closed: every file an earlier document reaches
        kept = []
        for root in self.roots():
            if root in read:
                continue
            new, boundary = self._unread(root, read)
            weight = sum(len(self.parsed(name).text) + 1 for name in new)
            if kept and self._outweighs(boundary, read, weight):
                read.update(new)
                continue
            read.update(new)
            kept.append(self.assemble(root, set()))
        return kept

    def _unread(self, root: str, read: set[str]) -> tuple[list[str], list[str]]:
        """Files ``root`` reaches through files not in ``read`` (itself included), and the files
        of ``read`` it reaches first."""
        new, boundary, seen, pending = [], [], {root}, [root]
        while pending:
            name = pending.pop()
            new.append(name)
            for target in self.targets(name):
                if target in seen:
                    continue
                seen.add(target)
                (boundary if target in read else pending).append(target)
        return new, boundary

    def _outweighs(self, boundary: list[str], read: set[str], weight: int) -> bool:
        """Whether the files reached from ``boundary`` (all in ``read``) weigh more than ``weight``;
        it stops as soon as they do."""
        total, seen, pending = 0, set(boundary), list(boundary)
        while pending:
            name = pending.pop()
            total += len(self.parsed(name).text) + 1
            if total > weight:
                return True
            for target in self.targets(name):
                if target not in seen:
                    seen.add(target)
                    pending.append(target)
        return False
