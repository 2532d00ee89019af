"""GitHub code: RedPajama's copyright-comment stripping, line statistics and quality filters (recipe §3.2).

Thresholds are RedPajama's: a file is dropped when its extension is not in the 66-entry
whitelist, a line is longer than 1,000 characters, lines average more than 100, less than
a quarter of its characters are alphanumeric, or it has fewer than 1.5 alphabetic
characters per GPT-NeoX token.
"""

from __future__ import annotations

import hashlib
import re

from redpajama.core.records import Drop, Record, Step, StepResult
from redpajama.models import catalog

EXTENSIONS = (
    ".asm", ".bat", ".cmd", ".c", ".h", ".cs", ".cpp", ".hpp", ".c++", ".h++", ".cc", ".hh", ".C", ".H",
    ".cmake", ".css", ".dockerfile", ".f90", ".f", ".f03", ".f08", ".f77", ".f95", ".for", ".fpp", ".go",
    ".hs", ".html", ".java", ".js", ".jl", ".lua", ".md", ".markdown", ".php", ".php3", ".php4", ".php5",
    ".phps", ".phpt", ".pl", ".pm", ".pod", ".perl", ".ps1", ".psd1", ".psm1", ".py", ".rb", ".rs", ".sql",
    ".scala", ".sh", ".bash", ".command", ".zsh", ".ts", ".tsx", ".tex", ".vb", "Dockerfile", "Makefile",
    ".xml", ".rst", ".m", ".smali",
)
MAX_LINE_LENGTH = 1000
MAX_AVG_LINE_LENGTH = 100
MIN_ALNUM_PROP = 0.25
MIN_ALPHA_PER_TOKEN = 1.5

BLOCK_COMMENT = re.compile(r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/")
LINE_COMMENT_STARTS = ("//", "#", "--")


def skipped_path(path: str) -> bool:
    """RedPajama skips certificates and a root-level ``LICENSE`` file."""
    return path.endswith(".crt") or path == "LICENSE"


def content_hash(content: str) -> str:
    """md5 of the raw content, RedPajama's dedup key."""
    return hashlib.md5(content.encode("utf-8", "surrogatepass")).hexdigest()


def strip_copyright(content: str) -> str:
    """Remove a leading copyright notice.

    As RedPajama: the first C-style block comment is cut if it mentions "copyright", and
    when the file has a block comment nothing else is touched. Otherwise the leading run
    of ``//``, ``#`` and ``--`` comment lines (and blank lines) goes, but here only when
    it mentions "copyright": RedPajama dropped it whatever it said, shebangs included.
    """
    block = BLOCK_COMMENT.search(content)
    if block is not None:
        if "copyright" in block.group(0).lower():
            return content[: block.start()] + content[block.end() :]
        return content
    lines = content.splitlines(keepends=True)
    leading = 0
    while leading < len(lines) and (not lines[leading].strip() or lines[leading].lstrip().startswith(LINE_COMMENT_STARTS)):
        leading += 1
    if leading and "copyright" in "".join(lines[:leading]).lower():
        return "".join(lines[leading:])
    return content


def line_stats(content: str) -> dict[str, float]:
    """RedPajama's statistics of the cleaned content (all zero for an empty file)."""
    lines = content.splitlines()
    if not lines:
        return {"line_count": 0, "max_line_length": 0, "avg_line_length": 0, "alnum_prop": 0}
    return {
        "line_count": len(lines),
        "max_line_length": max(len(line) for line in lines),
        "avg_line_length": len(content) / len(lines),
        "alnum_prop": sum(char.isalnum() for char in content) / len(content),
    }


def alpha_per_token(content: str, tokenizer) -> float:
    tokens = len(tokenizer.encode(content, add_special_tokens=False).ids)
    return sum(char.isalpha() for char in content) / tokens if tokens else 0.0


class CleanCode(Step):
    """Strips the copyright notice and adds RedPajama's line statistics to ``meta``."""

    name = "clean_code"
    description = "clean_code: strip a leading copyright comment, compute line statistics"

    def apply(self, record: Record) -> StepResult:
        record["text"] = strip_copyright(record["text"])
        record["meta"].update(line_stats(record["text"]))
        return record


class CodeQuality(Step):
    """RedPajama's quality filter, in its order; each failed rule is a drop reason."""

    name = "code_quality"
    description = (
        "code_quality: non-empty, extension whitelist (66), max line <= 1000, average line <= 100, "
        "alphanumeric >= 0.25, alphabetic characters per GPT-NeoX token >= 1.5"
    )

    def __init__(self, tokenizer_location: str):
        self.tokenizer_location = tokenizer_location
        self._tokenizer = None

    def setup(self) -> None:
        self._tokenizer = catalog.load_tokenizer(self.tokenizer_location)

    def apply(self, record: Record) -> StepResult:
        meta, text = record["meta"], record["text"]
        if not text:
            return Drop("empty")
        if not meta["path"].endswith(EXTENSIONS):
            return Drop("extension_not_allowed")
        if meta["max_line_length"] > MAX_LINE_LENGTH:
            return Drop("max_line_length")
        if meta["avg_line_length"] > MAX_AVG_LINE_LENGTH:
            return Drop("avg_line_length")
        if meta["alnum_prop"] < MIN_ALNUM_PROP:
            return Drop("alnum_prop")
        if self._tokenizer is None:
            self.setup()
        alpha = alpha_per_token(text, self._tokenizer)
        if alpha < MIN_ALPHA_PER_TOKEN:
            return Drop("alpha_per_token", scores={"alpha_per_token": round(alpha, 4)})
        return record
