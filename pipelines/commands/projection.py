"""Projecting a run's token count to the full slice, with an interval that says what it rests on.

The projection is ``tokens x full units / units processed``. Its interval comes from the
spread between units: what each processed unit kept (kept bytes from ``stats.json``
``unit_yields``, or a book's tokens; units that kept nothing count as zero) is resampled with
replacement (scipy's bootstrap, bias-corrected and accelerated), the mean is scaled to the
full number of units (and to tokens, by the run's tokens per byte), narrowed by the finite
population correction when a large share of the units was processed, and its 2.5th and
97.5th percentiles are the 95% interval.

A bootstrap needs enough units: with n units its interval is narrower than it should be by
about sqrt((n-1)/n) x 1.96 / t(0.975, n-1) (the plug-in variance and normal quantiles instead
of Student's): 0.11 with 2 units, 0.82 with 10, 0.90 from 18 on (``MIN_UNITS``, the
fewest units whose interval is at most 10 % too narrow). With fewer units there is no interval
and the report says why; with every unit processed the count is the slice itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from redpajama.core import storage, streams
from redpajama.formats import arxiv_manifest as arxiv_sources

ROUNDS = 2000
CONFIDENCE = 0.95
MIN_UNITS = 18  # the fewest units whose bootstrap interval is at most 10 % too narrow (see above)
BCA_MAX_UNITS = 5000  # the acceleration's jackknife is quadratic in units; past this the percentile interval


@dataclass
class FullCount:
    count: int | None
    source: str  # where the count came from, or why there is none


def full_units(spec: dict, source: str, cc_mirror: str | None = None, arxiv_manifest: str | None = None,
               arxiv_until: str | None = None) -> FullCount:
    """How many units the whole slice has, as its report target's ``full_scale`` says: a number
    (read from ``source``, the slice's manifest), WET ``listings`` to count, or arXiv's source
    ``manifest`` to count tars in (given to the report)."""
    if spec.get("count"):
        return FullCount(int(spec["count"]), source)
    if spec.get("listings"):
        return _listing_count(spec["listings"], cc_mirror)
    if spec.get("manifest"):
        if not arxiv_manifest:
            return FullCount(None, "unknown: pass --arxiv-manifest (arXiv's src manifest, requester pays on S3)")
        return arxiv_tar_count(arxiv_manifest, arxiv_until)
    return FullCount(None, spec.get("note") or "unknown: no public count")


def from_run(stats: dict | None) -> tuple[FullCount, str, str] | None:
    """The full-scale count a run recorded about its own source, with the ``stats.json`` key of the
    units processed and their name: a --bigquery run's result-table rows (all of them read), an
    arXiv run's tars listed in the source manifest up to its --until."""
    recipe = (stats or {}).get("recipe") or {}
    table = recipe.get("bigquery")
    if table:
        return FullCount(int(table["rows"]), f"rows of the query's result table {table['table']}"), "read", "BigQuery rows"
    listed = recipe.get("source_manifest")
    if listed:
        bound = f" up to {listed['until']}" if listed.get("until") else ""
        return (FullCount(int(listed["tars"]), f"counted by the run from {listed['path']} ({listed['tars']} of "
                                               f"{listed['tars_listed']} tars{bound})"), "planned", "bulk source tars")
    return None


def _listing_count(listings: list[str], mirror: str | None) -> FullCount:
    total = 0
    for url in listings:
        location = url.replace("https://data.commoncrawl.org", mirror.rstrip("/")) if mirror else url
        if storage.is_url(location) and not storage.exists(location):  # offline: say so now, not after retries
            return FullCount(None, f"unknown: {location} unreachable (offline?)")
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
        data = stream.read()
    try:
        tars = arxiv_sources.parse(data)
    except ValueError:
        tars = []
    if not tars:
        return FullCount(None, f"unknown: no arXiv_src_YYMM_NNN.tar entries in {manifest}")
    kept = [tar for tar in tars if arxiv_sources.up_to(tar.yymm, until)]
    bound = f" up to {until}" if until else ""
    return FullCount(len(kept), f"counted from {manifest} ({len(kept)} of {len(tars)} tars{bound})")


_months = arxiv_sources.months


def narrowness(units: int) -> float:
    """How much narrower than it should be a percentile bootstrap's 95 % interval of a mean of
    ``units`` values comes out: sqrt((n-1)/n) x 1.96 / t(0.975, n-1) (1 = right)."""
    from scipy import stats

    if units < 2:
        return 0.0
    return math.sqrt((units - 1) / units) * stats.norm.ppf(0.975) / stats.t.ppf(0.975, units - 1)


@dataclass(frozen=True)
class Spread:
    """A projection's 95 % interval, or None with the reason; ``why`` says what it rests on."""

    low: int | None
    high: int | None
    why: str

    @property
    def bounds(self) -> tuple[int, int] | None:
        return (self.low, self.high) if self.low is not None and self.high is not None else None


def bootstrap(values: Sequence[float], processed: int, full: int, scale: float, unit: str,
              seed: int = 0) -> Spread:
    """95 % interval of ``full x mean(values) x scale``, ``values`` being what each processed unit
    kept (units beyond ``len(values)`` kept nothing). ``unit`` names the units in the reason."""
    import warnings

    import numpy
    from scipy import stats

    if processed >= full:
        return Spread(None, None, f"all {full:,} {unit} processed: a count, not a projection")
    if processed < MIN_UNITS:
        width = ("one unit shows no spread at all" if processed < 2 else
                 f"with {processed} its 95 % interval would come out {1 - narrowness(processed):.1%} too narrow")
        return Spread(None, None, f"no interval: only {processed:,} processed ({unit}); a bootstrap needs at least "
                      f"{MIN_UNITS}, and {width}")
    if len(values) > processed or scale <= 0:
        return Spread(None, None, "no interval: the run's per-unit record does not match its units")
    per_unit = numpy.zeros(processed, dtype=float)
    per_unit[: len(values)] = values
    method = "BCa" if processed <= BCA_MAX_UNITS else "percentile"
    point = per_unit.mean()
    if numpy.all(per_unit == per_unit[0]):
        low = high = point
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap((per_unit,), numpy.mean, n_resamples=ROUNDS, confidence_level=CONFIDENCE,
                                     method=method, rng=numpy.random.default_rng(seed), vectorized=True,
                                     batch=max(1, 4_000_000 // processed))
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if not (math.isfinite(low) and math.isfinite(high)):
            return Spread(None, None, f"no interval: the {processed:,} {unit} are too alike for a bootstrap")
    shrink = math.sqrt((full - processed) / (full - 1))  # finite population: units drawn without replacement
    low, high = point - shrink * (point - low), point + shrink * (high - point)
    factor = full * scale
    why = (f"95 % bootstrap interval ({method}, {ROUNDS:,} resamples) over the {processed:,} {unit} processed"
           + (f", finite population correction {shrink:.2f}" if shrink < 0.995 else ""))
    return Spread(round(low * factor), round(high * factor), why)


def interval(yields: list[int], processed: int, full: int, tokens: int, seed: int = 0) -> tuple[int, int] | None:
    """95 % bootstrap interval of the projected tokens from kept bytes per unit, or None (too few
    units, or every unit processed; :func:`bootstrap` says which)."""
    total = sum(yields)
    if total <= 0 or tokens <= 0:
        return None
    return bootstrap(yields, processed, full, tokens / total, "units", seed).bounds
