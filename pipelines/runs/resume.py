"""Whether a run reuses, redoes or refuses the finished run in its slice folder.

The finished run's ``_SUCCESS`` holds its fingerprint (see :func:`redpajama.pipelines.runs.run.fingerprint`).
Other settings (options, limits, inputs named, version) are refused unless ``--overwrite``,
and the refusal names what differs. Inputs whose bytes changed are refused the same way. A
model whose content changed, or an input or model whose state could not be read (then or
now), makes the same command run again: nothing says the old output is still right. A run
that had failed units is reused as it is unless ``--retry-failed`` asks to run it again.

A retry runs the whole slice again rather than only its failed units: output shards are cut
by a hash over every record and sorted by an order key that is not written out, and dedup
keeps the first of a key across all inputs, so only a run over every input gives the bytes
(and the counts) of a run in which nothing had failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEPARATE = ("input_states", "models")  # compared on their own: what changed in them is not a setting
SHOWN = 3  # changed names a message lists


@dataclass(frozen=True)
class Decision:
    action: str  # "reuse", "run" or "refuse"
    message: str = ""  # the refusal, or a note said before the run starts


def decide(marker: dict[str, Any] | None, stats: dict[str, Any] | None, wanted: dict[str, Any], *, where: str,
           overwrite: bool = False, retry_failed: bool = False) -> Decision:
    """What to do with the finished run whose ``marker`` and ``stats`` are in ``where``."""
    old = (marker or {}).get("fingerprint")
    if not isinstance(old, dict):
        return Decision("run")
    settings = setting_changes(old, wanted)
    if settings:
        if overwrite:
            return Decision("run", f"replacing the finished run in {where} (other {_listing(settings)})")
        return Decision("refuse", f"{where} holds a finished run with other {_listing(settings)}; "
                                  "pass --overwrite to replace it or choose another --output")
    changed, unknown = state_changes(old.get("inputs") or [], old.get("input_states"), wanted.get("input_states"))
    if changed:
        if overwrite:
            return Decision("run", f"replacing the finished run in {where}: {_count(changed, 'input')} changed")
        return Decision("refuse", f"{where}: {_count(changed, 'input')} changed since the finished run "
                                  f"({_names(changed)}); pass --overwrite to run again or choose another --output")
    if overwrite:
        return Decision("run", f"--overwrite: running again into {where}")
    models, unknown_models = model_changes(old.get("models") or {}, wanted.get("models") or {})
    if models:
        return Decision("run", f"models changed since the finished run ({_names(models)}): running again")
    if unknown or unknown_models:
        what = [*unknown, *(f"model {name}" for name in unknown_models)]
        return Decision("run", f"the state of {_names(what)} could not be read (a server error that outlasted "
                               "the retries), so the finished run cannot be trusted: running again")
    if stats is None:
        return Decision("run", f"{where}/stats.json cannot be read: running again")
    if retry_failed and stats.get("failed"):
        return Decision("run", f"retrying the {stats['failed']:,} failed unit(s) ({failure_listing(stats)}): the "
                               "slice runs again over every input, as shards and dedup span all of them")
    return Decision("reuse")


def setting_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Fingerprint keys whose values differ, one level into objects (``options.min_length``),
    with the values when they are short."""
    found = []
    for key in sorted(set(old) | set(new)):
        if key in SEPARATE or old.get(key) == new.get(key):
            continue
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            found += [_change(f"{key}.{sub}", before.get(sub), after.get(sub))
                      for sub in sorted(set(before) | set(after)) if before.get(sub) != after.get(sub)]
        elif key == "inputs" and isinstance(before, list) and isinstance(after, list):
            added, removed = len(set(after) - set(before)), len(set(before) - set(after))
            found.append(f"inputs ({added} added, {removed} removed)" if added or removed else "inputs (order)")
        else:
            found.append(_change(key, before, after))
    return found


def state_changes(inputs: list[str], old: list | None, new: list | None) -> tuple[list[str], list[str]]:
    """Inputs whose known state changed, and inputs whose state is unknown then or now."""
    old = old or [None] * len(inputs)
    new = new or [None] * len(inputs)
    changed = [name for name, a, b in zip(inputs, old, new, strict=False) if a is not None and b is not None and a != b]
    unknown = [name for name, a, b in zip(inputs, old, new, strict=False) if a is None or b is None]
    return changed, unknown


def model_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Models whose content changed (or that came or went), and models whose content is unknown."""
    changed = [name for name in sorted(set(old) | set(new))
               if name not in old or name not in new or (old[name] and new[name] and old[name] != new[name])]
    unknown = [name for name in sorted(set(old) & set(new)) if not old[name] or not new[name]]
    return changed, unknown


def failure_listing(stats: dict[str, Any]) -> str:
    """``unreadable_input 2, corrupt_compression 1``: failed units by reason, most first."""
    reasons = stats.get("failed_by_reason") or {}
    if not reasons:
        return f"{stats.get('failed', 0):,} failed"
    return ", ".join(f"{reason} {count:,}" for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def every_unit_failed(stats: dict[str, Any]) -> bool:
    """Nothing but failures: no document was kept or dropped, and something failed."""
    return stats["failed"] > 0 and stats["kept"] == 0 and not sum(stats["dropped"].values())


def _change(name: str, before: Any, after: Any) -> str:
    shown = f"{_short(before)} -> {_short(after)}"
    return f"{name} ({shown})" if len(shown) <= 60 else name


def _short(value: Any) -> str:
    return "unset" if value is None else str(value)


def _listing(changes: list[str]) -> str:
    return ("setting: " if len(changes) == 1 else "settings: ") + _names(changes)


def _names(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _count(names: list[str], noun: str) -> str:
    return f"{len(names)} {noun}" + ("" if len(names) == 1 else "s")
