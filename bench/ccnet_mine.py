"""cc_net's own ``mine`` steps on local WET files, in one process (run by ``bench/ccnet.py``).

As ``cc_net.mine`` runs a shard with its hashes in memory: a first pass collects every line's
hash (``HashesCollector``), the second removes lines seen more than once, then language ID,
the language filter, sentencepiece, KenLM, the perplexity buckets and the split into
``{language}_{bucket}.json.gz`` files, one process. Usage:
``python -m bench.ccnet_mine MODELS_DIR LID WET...``, where MODELS_DIR holds ``en.sp.model``,
``en.arpa.bin`` and ``cutoff.csv``. Prints the documents written per file.
"""

from __future__ import annotations

import gzip
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fasttext.FastText
import numpy
from cc_net import dedup, jsonql, perplexity, process_wet_file, split_by_lang

_predict = fasttext.FastText._FastText.predict


def _predict_one(self, text, k=1, threshold=0.0, on_unicode_error="strict"):
    """fastText's single-string predict builds an array with ``copy=False``, which NumPy 2
    refuses; a one-item list takes the same C++ path (and float64 scores are Python floats)."""
    if isinstance(text, str):
        labels, probs = _predict(self, [text], k, threshold, on_unicode_error)
        return labels[0], numpy.asarray(probs[0], dtype=numpy.float64)
    return _predict(self, text, k, threshold, on_unicode_error)


def documents(files: list[str]) -> Iterator[dict]:
    """cc_net's WET parser reads headers by position, in CommonCrawl's order: warcio's writer
    puts ``WARC-Payload-Digest`` before ``Content-Length``, so that line is left out."""
    for name in files:
        with gzip.open(name, "rt", encoding="utf-8") as lines:
            yield from process_wet_file.parse_warc_file(
                line for line in lines if not line.startswith("WARC-Payload-Digest:"))


def mine(models: Path, lid: str, files: list[str]) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        hashes = out / "hashes.bin"
        jsonql.run_pipes(dedup.HashesCollector(field="raw_content", output=hashes), inputs=documents(files),
                         processes=1)
        steps = [
            dedup.DuplicatesRemover(field="raw_content", hashes_files=[hashes]),
            split_by_lang.Classifier(model=Path(lid), field="raw_content", out_field="language", top=1, threshold=0.5),
            jsonql.where([lambda doc: doc.get("language") in {"en"}]),
            perplexity.MultiSentencePiece({"en": models / "en.sp.model"}, field="raw_content",
                                          output_field="tokenized", normalize=True),
            perplexity.DocLM({"en": models / "en.arpa.bin"}, field="tokenized", output_field="perplexity",
                             normalize=False),
            perplexity.PerplexityBucket(models / "cutoff.csv"),
            perplexity.DropKeys("tokenized"),
            jsonql.split(pattern=str(out / "{language}_{bucket}.json.gz"), mkdir=True),
        ]
        jsonql.run_pipes(*steps, inputs=documents(files), processes=1, chunksize=100)
        return {path.name: sum(1 for _ in gzip.open(path, "rt")) for path in sorted(out.glob("*.json.gz"))}


if __name__ == "__main__":
    fasttext.FastText._FastText.predict = _predict_one
    written = mine(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
    print(" ".join(f"{name}={count}" for name, count in written.items()))
