"""What ``--keep-dropped FRACTION`` keeps of a step's rejects, and the line each becomes under
``_dropped/<step>/<reason>/``, whatever executes the recipe. The choice is the seeded hash of
``meta.id`` that ``redpajama sample`` draws with (:func:`selected`)."""

from __future__ import annotations

import hashlib
import json

from redpajama.core.records import Drop, Record
from redpajama.pipelines.runs.sink import SinkLine

REJECTS = "rejects"  # the shard set's name of a reason's rejects
SCALE = float(1 << 64)


def selected(record: dict, fraction: float, seed: int) -> bool:
    """Whether a seeded hash of the record's id (else its text) falls below ``fraction``."""
    key = record.get("meta", {}).get("id") or record.get("text", "")
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / SCALE < fraction


def keeps_reject(record, fraction: float | None) -> bool:
    """Whether ``--keep-dropped FRACTION`` keeps this reject: all of them at 1, else those a seeded
    hash of ``meta.id`` puts below the fraction, as ``redpajama sample --seed 0`` chooses."""
    if fraction is None:
        return False
    return fraction >= 1 or selected(record, fraction, 0)


def reject_line(step: str, order_key: str, record: Record, drop: Drop) -> SinkLine:
    """A reject as a sink line: ``<step>/<reason>/rejects``, keyed and sorted like kept output.
    The record is written as the step left it, its scores added to its meta; what JSON cannot
    hold as UTF-8 (a lone surrogate) is escaped, and what it cannot hold at all written as text."""
    meta = {key: value for key, value in record["meta"].items() if not key.startswith("_")}
    meta.update(drop.scores)
    document = {"text": record["text"], "meta": meta}
    try:
        line = json.dumps(document, ensure_ascii=False, default=repr).encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(document, default=repr).encode("ascii")
    return SinkLine(f"{step}/{drop.reason}/{REJECTS}", str(meta.get("id") or order_key), order_key, line)


def kept_reject_line(step: str, order_key: str, record: Record, drop: Drop, fraction: float | None) -> SinkLine | None:
    """The reject's line when ``fraction`` keeps it (the record the drop names, if it names one); else None."""
    if drop.record is not None:
        record = drop.record
    if fraction is None or fraction < 1 and not keeps_reject(
            {"text": record["text"], "meta": {**record["meta"], **drop.scores}}, fraction):
        return None
    return reject_line(step, order_key, record, drop)
