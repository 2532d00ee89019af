"""Repository licence detection with askalono (SPDX texts), and RedPajama's licence whitelist.

RedPajama took GitHub's own per-repository licence (BigQuery ``licenses`` table) and kept
``mit%``, ``bsd%`` and ``apache%``. For local checkouts the licence files at the root
(``LICENSE``, ``LICENCE``, ``COPYING``, with any suffix) are identified by askalono; a
repository is allowed when every licence file it has is MIT, BSD-2/3-Clause or Apache-2.0
with at least ``MIN_CONFIDENCE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALLOWED_SPDX = ("MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0")
ALLOWED_BIGQUERY_PREFIXES = ("mit", "bsd", "apache")
MIN_CONFIDENCE = 0.8  # askalono's own default threshold
LICENSE_FILE = re.compile(r"^(licen[cs]e|copying)([-._].*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Detected:
    license: str | None  # SPDX ids joined with " AND " when a repository has several files
    confidence: float
    allowed: bool


def is_license_file(name: str) -> bool:
    return bool(LICENSE_FILE.match(name))


def identify(text: str) -> tuple[str | None, float]:
    """askalono's best SPDX match for one licence text, with its score."""
    import askalono

    try:
        match = askalono.identify(text)
    except Exception:  # askalono raises on text it cannot score at all
        return None, 0.0
    return match.name, float(match.score)


def detect(files: dict[str, str]) -> Detected:
    """The licence of a repository from the texts of its root licence files."""
    if not files:
        return Detected(None, 0.0, False)
    found = [identify(text) for _, text in sorted(files.items())]
    names = sorted({name for name, _ in found if name})
    confidence = min(score for _, score in found)
    allowed = all(name in ALLOWED_SPDX and score >= MIN_CONFIDENCE for name, score in found)
    return Detected(" AND ".join(names) or None, round(confidence, 3), allowed)


def bigquery_allowed(license_value: str | None) -> bool:
    """RedPajama's query: ``license LIKE 'mit%' OR 'bsd%' OR 'apache%'``."""
    return bool(license_value) and license_value.lower().startswith(ALLOWED_BIGQUERY_PREFIXES)
