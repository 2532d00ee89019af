"""Token counting speed: GPT-NeoX-20B tokens per second on one core (target >= 1 M).

Real text from the samples: the 697 CommonCrawl documents (dolma's extraction), the 24
Gutenberg books and the English Wikipedia excerpt's page text. Counted with the same call
``redpajama report`` uses (``encode_batch_fast``, batches of 256), in a child process
pinned to one tokenizer thread.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.results_io import machine, publish

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"

_MEASURE = """
import json, sys, time
from redpajama.pipelines.tokens import BATCH, count_texts
from tokenizers import Tokenizer
texts = json.load(open(sys.argv[2]))
tokenizer = Tokenizer.from_file(sys.argv[1])
count_texts(texts[:20], tokenizer, False)
best = None
for _ in range(3):
    started = time.perf_counter()
    tokens = sum(count_texts(texts[i:i + BATCH], tokenizer, False) for i in range(0, len(texts), BATCH))
    seconds = time.perf_counter() - started
    best = seconds if best is None else min(best, seconds)
print(json.dumps({"tokens": tokens, "seconds": best}))
"""


def corpus() -> dict[str, list[str]]:
    from redpajama.slices.books import decode_book

    from bench.books_sample import sample_books

    with gzip.open(SHARED / "commoncrawl" / "text" / "dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz") as f:
        web = [json.loads(line)["text"] for line in f]
    books = [decode_book(p.read_bytes()) for p in sample_books()]
    return {"web": web, "books": books}


def main() -> dict:
    if not TOKENIZER.exists():
        sys.exit(f"bench/tokens: {TOKENIZER} not found")
    figures: dict = {"benchmark": "tokens", "tokenizer": TOKENIZER.name, "threads": 1}
    env = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for name, texts in corpus().items():
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"redpajama-bench-{name}.json"
        path.write_text(json.dumps(texts))
        result = subprocess.run([sys.executable, "-c", _MEASURE, str(TOKENIZER), str(path)], env=env,
                                capture_output=True, text=True, check=True)
        path.unlink()
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        figures[f"{name}_documents"] = len(texts)
        figures[f"{name}_tokens"] = measured["tokens"]
        figures[f"{name}_tokens_per_s_per_core"] = round(measured["tokens"] / measured["seconds"])
    figures["target_tokens_per_s_per_core"] = 1_000_000
    figures["machine"] = machine()
    return publish("tokens", figures)


if __name__ == "__main__":
    main()
