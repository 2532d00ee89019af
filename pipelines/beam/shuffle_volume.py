"""Elements and bytes that go into each shuffle that carries data, counted as they go in.

``CountShuffled`` passes elements on unchanged and adds to the counters
``{slice}/_shuffle/{label}/elements`` and ``.../bytes``; ``stats.json`` reports them under
``shuffles`` (:func:`redpajama.pipelines.runs.stats.volumes`). Bytes are what Beam's default
coder writes for the element, or what a ``size`` function says (the sink's lines count as their
text, which a local run parks in spill files).
"""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam
from apache_beam.coders import FastPrimitivesCoder
from apache_beam.metrics import Metrics
from redpajama.pipelines.beam.steps import NAMESPACE
from redpajama.pipelines.runs.stats import shuffle_counter_prefix


class CountShuffled(beam.DoFn):
    def __init__(self, prefix: str, size: Callable[[object], int] | None = None):
        self.prefix = prefix
        self.size = size

    def setup(self):
        self.elements = Metrics.counter(NAMESPACE, self.prefix + "elements")
        self.bytes = Metrics.counter(NAMESPACE, self.prefix + "bytes")
        self.coder = FastPrimitivesCoder()

    def process(self, element):
        self.elements.inc()
        self.bytes.inc(self.size(element) if self.size else self.coder.estimate_size(element))
        yield element


def counted(pcoll, slice_name: str, label: str, size: Callable[[object], int] | None = None):
    """``pcoll`` with its elements counted as going into shuffle ``label``."""
    return pcoll | f"Count_{label}" >> beam.ParDo(CountShuffled(shuffle_counter_prefix(slice_name, label), size))
