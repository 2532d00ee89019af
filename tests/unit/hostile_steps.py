"""Steps that misbehave on purpose, for the per-document budget tests (imported by the budget's child process)."""

from __future__ import annotations

import os
import re
import signal
import time

from redpajama.core.records import Drop, Record, Step, StepResult

CATASTROPHIC = re.compile(r"(a+)+b")  # exponential backtracking, all of it inside re's C code


class Hostile(Step):
    """Behaves by the record's ``meta.do``: ``spin`` (C code for hours), ``grow`` (memory without end),
    ``crash`` (the process dies), ``raise``, ``drop``, ``work`` (``meta.seconds`` of CPU, after
    creating the file ``meta.started``); anything else upper-cases the text."""

    name = "hostile"
    unbounded_cost = True

    def __init__(self):
        self.set_up = False

    def setup(self) -> None:
        self.set_up = True

    def apply(self, record: Record) -> StepResult:
        action = record["meta"].get("do")
        if action == "spin":
            CATASTROPHIC.fullmatch("a" * 64)
        elif action == "grow":
            hoard = []
            while True:
                hoard.append(bytearray(8 << 20))
        elif action == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif action == "raise":
            raise ValueError(f"bad record {record['meta']['id']}")
        elif action == "drop":
            return Drop("not_wanted")
        elif action == "work":
            open(record["meta"]["started"], "w").close()
            end = time.process_time() + record["meta"]["seconds"]
            while time.process_time() < end:
                pass
        record["text"] = record["text"].upper() + (" (set up)" if self.set_up else "")
        record["meta"]["pid"] = os.getpid()
        return record


class Cheap(Step):
    name = "cheap"

    def apply(self, record: Record) -> StepResult:
        record["meta"]["pid"] = os.getpid()
        return record
