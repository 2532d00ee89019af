"""A run's counters -> ``stats.json``, and the accounting identity every run must satisfy.

An executor counts every outcome under ``"{slice}/{step}/{outcome}"``, and the elements and
bytes going into each shuffle under ``"{slice}/_shuffle/{label}/elements"`` (and ``/bytes``).
``read`` counts every input document plus every unit that failed before it could become
one (a failure counts the units it stands for), so that
``read == kept + sum(dropped.values()) + failed`` holds for every run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

SOURCE_STEPS = ("plan", "read")
KEPT_DROPPED = "dropped_kept:"  # a step's rejects written by --keep-dropped, counted as "dropped_kept:<reason>"
SHUFFLE = "_shuffle"  # the counters of the shuffles' volume: "{slice}/_shuffle/{label}/{elements|bytes}"


class AccountingError(AssertionError):
    """The counts of a run do not add up: some documents are unaccounted for."""


def build_stats(slice_name: str, step_names: list[str], counters: dict[str, int], wall_seconds: float) -> dict[str, Any]:
    """The ``stats.json`` document of one run of ``slice_name``."""
    prefix = f"{slice_name}/"

    def get(step: str, outcome: str) -> int:
        return counters.get(f"{prefix}{step}/{outcome}", 0)

    def drops_of(step: str) -> dict[str, int]:
        marker = f"{prefix}{step}/dropped:"
        return {
            name[len(marker) :]: value
            for name, value in sorted(counters.items())
            if name.startswith(marker) and value
        }

    steps = []
    dropped: dict[str, int] = defaultdict(int)
    failed = sum(get(step, "failed") for step in (*SOURCE_STEPS, "write"))
    for step in step_names:
        step_drops = drops_of(step)
        for reason, count in step_drops.items():
            dropped[reason] += count
        failed += get(step, "failed")
        steps.append(
            {
                "name": step,
                "in": get(step, "in"),
                "out": get(step, "out"),
                "dropped": step_drops,
                "failed": get(step, "failed"),
                "bytes_in": get(step, "bytes_in"),
                "bytes_out": get(step, "bytes_out"),
            }
        )
        known = {"in", "out", "bytes_in", "bytes_out", "failed"}
        marker = f"{prefix}{step}/"
        for name, value in sorted(counters.items()):
            outcome = name[len(marker) :]
            if not name.startswith(marker) or outcome in known or outcome.startswith("dropped:"):
                continue
            if outcome.startswith(KEPT_DROPPED):  # rejects written to _dropped/<step>/<reason>/
                steps[-1].setdefault("dropped_kept", {})[outcome[len(KEPT_DROPPED) :]] = value
            else:
                steps[-1][outcome] = value  # step-specific counts: matched, rejected_pairs, capped_buckets
    documents = get("read", "out")
    stats = {
        "slice": slice_name,
        "read": documents + sum(get(step, "failed") for step in SOURCE_STEPS),
        "kept": get("write", "out"),
        "dropped": dict(sorted(dropped.items())),
        "failed": failed,
        "bytes_in": get("read", "bytes_out"),
        "bytes_out": get("write", "bytes_out"),
        "units": {"planned": get("plan", "out"), "read": get("read", "in")},
        "steps": steps,
        "wall_seconds": round(wall_seconds, 3),
    }
    shuffles = volumes(slice_name, counters)
    if shuffles:
        stats["shuffles"] = shuffles  # elements and bytes into each shuffle that carries data
    return stats


def dropped_kept(stats: dict[str, Any], fraction: float) -> dict[str, Any]:
    """What ``--keep-dropped FRACTION`` kept: rejects by ``<step>/<reason>`` (their folder under
    ``_dropped/``), out of how many were dropped there."""
    kept = {f"{step['name']}/{reason}": count for step in stats["steps"]
            for reason, count in sorted(step.get("dropped_kept", {}).items())}
    of = {f"{step['name']}/{reason}": count for step in stats["steps"] for reason, count in step["dropped"].items()}
    return {"fraction": fraction, "documents": sum(kept.values()), "of": sum(of.values()),
            "by_reason": {name: {"kept": kept.get(name, 0), "of": of[name]} for name in sorted(of)}}


def check_identity(stats: dict[str, Any]) -> None:
    """Raise :class:`AccountingError` unless ``read == kept + dropped + failed``."""
    accounted = stats["kept"] + sum(stats["dropped"].values()) + stats["failed"]
    if stats["read"] != accounted:
        raise AccountingError(
            f"{stats['slice']}: read {stats['read']} != kept {stats['kept']} + dropped "
            f"{sum(stats['dropped'].values())} + failed {stats['failed']}"
        )


def shuffle_counter_prefix(slice_name: str, label: str) -> str:
    """Where the elements and bytes going into shuffle ``label`` are counted."""
    return f"{slice_name}/{SHUFFLE}/{label}/"


def volumes(slice_name: str, counters: dict[str, int]) -> dict[str, dict[str, int]]:
    """``{label: {"elements": n, "bytes": b}}`` from a run's counters."""
    found: dict[str, dict[str, int]] = {}
    marker = f"{slice_name}/{SHUFFLE}/"
    for name, value in sorted(counters.items()):
        if name.startswith(marker):
            label, _, measure = name[len(marker):].rpartition("/")
            found.setdefault(label, {"elements": 0, "bytes": 0})[measure] = value
    return found
