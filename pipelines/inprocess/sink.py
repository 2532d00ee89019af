"""The sink in memory: :class:`~redpajama.pipelines.runs.sink.SinkLine` items into sorted, stably
sharded files by the rule :mod:`redpajama.pipelines.runs.sink` states (the Beam sink's files, byte
for byte)."""

from __future__ import annotations

from collections.abc import Iterable

from redpajama.pipelines.runs.output_folder import join
from redpajama.pipelines.runs.sink import SinkLine, shard_count, shard_name, shard_order, stable_shard, write_lines


def write_sorted_shards(folder: str, lines: Iterable[SinkLine], shard_bytes: int, num_shards: int | None = None,
                        compressed: bool = True, always: tuple[str, ...] = (), extension: str = ".jsonl") -> list[str]:
    """Write ``lines`` as ``<folder>/<partition>-SSSSS-of-NNNNN<extension>[.zst]``; returns the paths.
    Partitions in ``always`` get their (empty) shard even when no line has them."""
    partitions: dict[str, list[SinkLine]] = {name: [] for name in always}
    for line in lines:
        partitions.setdefault(line.partition, []).append(line)
    written = []
    for name, members in sorted(partitions.items()):
        size = sum(len(member.line) + 1 for member in members)
        count = shard_count(size, len(members), shard_bytes, num_shards, name in always)
        if count is None:
            continue
        shards: list[list[SinkLine]] = [[] for _ in range(count)]
        for member in members:
            shards[stable_shard(member.shard_key, count) if count > 1 else 0].append(member)
        for index, shard in enumerate(shards):
            keys = [member.order_key for member in shard]
            order = shard_order(keys, range(len(shard)), lambda i, shard=shard: shard[i].line)
            path = join(folder, shard_name(name, index, count, compressed, extension))
            write_lines(path, (shard[i].line for i in order), compressed)
            written.append(path)
    return written
