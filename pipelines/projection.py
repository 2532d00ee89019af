"""Projecting a run's token count to the full slice, with an interval.

The projection is ``tokens x full units / units processed``. Its interval comes from the
spread between units: the processed units' kept bytes (from ``stats.json`` ``unit_yields``,
units that kept nothing counting as zero) are resampled with replacement, each resample's
mean yield is scaled to the full number of units and to tokens with the run's tokens per
byte, and the 2.5th and 97.5th percentiles of those projections are the 95% interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from redpajama.core import storage, streams

ROUNDS = 2000
ARXIV_TAR = re.compile(r"<filename>\s*(?:src/)?arXiv_src_(\d{4})_\d+\.tar\s*</filename>")


@dataclass
class FullCount:
    count: int | None
    source: str  # where the count came from, or why there is none


def full_units(name: str, spec: dict, cc_mirror: str | None = None, arxiv_manifest: str | None = None,
               arxiv_until: str | None = None) -> FullCount:
    """How many units the whole slice has: the manifest's number, else counted from a listing."""
    if spec.get("count"):
        return FullCount(int(spec["count"]), "manifests/targets.json")
    if name == "commoncrawl" and spec.get("listings"):
        return _listing_count(spec["listings"], cc_mirror)
    if name == "arxiv":
        if not arxiv_manifest:
            return FullCount(None, "unknown: pass --arxiv-manifest (arXiv's src manifest, requester pays on S3)")
        return arxiv_tar_count(arxiv_manifest, arxiv_until)
    return FullCount(None, spec.get("note") or "unknown: no public count")


def _listing_count(listings: list[str], mirror: str | None) -> FullCount:
    total = 0
    for url in listings:
        location = url.replace("https://data.commoncrawl.org", mirror.rstrip("/")) if mirror else url
        try:
            with storage.open_range(location) as stream:
                chunks = streams.decompressed_chunks(stream, location)
                total += sum(1 for _, line in streams.iter_lines(chunks, 1 << 16) if line.strip())
        except Exception as error:  # noqa: BLE001 - offline or moved: the projection says so
            return FullCount(None, f"unknown: {location} unreachable ({type(error).__name__})")
    return FullCount(total, f"counted from {len(listings)} wet.paths.gz listings")


def arxiv_tar_count(manifest: str, until: str | None = None) -> FullCount:
    """Source tars listed in arXiv's ``arXiv_src_manifest.xml`` (up to ``until`` = YYMM if given)."""
    with storage.open_range(manifest) as stream:
        text = stream.read().decode("utf-8", "replace")
    months = [match.group(1) for match in ARXIV_TAR.finditer(text)]
    if not months:
        return FullCount(None, f"unknown: no arXiv_src_YYMM_NNN.tar entries in {manifest}")
    kept = [month for month in months if until is None or _months(month) <= _months(until)]
    bound = f" up to {until}" if until else ""
    return FullCount(len(kept), f"counted from {manifest} ({len(kept)} of {len(months)} tars{bound})")


def _months(yymm: str) -> int:
    """YYMM as months since 1991 (arXiv's first year), so that 9108 < 0001."""
    year = int(yymm[:2])
    return ((year + 100) if year < 91 else year) * 12 + int(yymm[2:])


def interval(yields: list[int], processed: int, full: int, tokens: int, seed: int = 0) -> tuple[int, int] | None:
    """95% bootstrap interval of the projected tokens, or None with fewer than two units."""
    import numpy

    if processed < 2 or len(yields) > processed or tokens <= 0:
        return None
    per_unit = numpy.array(list(yields) + [0] * (processed - len(yields)), dtype=float)
    total = per_unit.sum()
    if total <= 0:
        return None
    rng = numpy.random.default_rng(seed)
    batch = max(1, min(ROUNDS, 4_000_000 // processed))  # bounded memory whatever the number of units
    means = numpy.concatenate([per_unit[rng.integers(0, processed, size=(min(batch, ROUNDS - done), processed))].mean(axis=1)
                               for done in range(0, ROUNDS, batch)])
    projected = means * full * (tokens / total)
    low, high = numpy.percentile(projected, [2.5, 97.5])
    return round(float(low)), round(float(high))
