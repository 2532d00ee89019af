"""Run every slice on a small real sample and print the summaries (the README's first command).

Samples come from ``--shared`` (the project's sample data folder) when it is there,
else from the real sources: the complete Latgalian Wikipedia and beer.stackexchange.com.
"""

from __future__ import annotations

import argparse
import os
import sys

from redpajama.pipelines.cli import summary
from redpajama.pipelines.options import RunnerConfig
from redpajama.pipelines.run import run_slice
from redpajama.slices.base import UsageError, registry

REMOTE = {
    "wikipedia": ["https://dumps.wikimedia.org/ltgwiki/latest/ltgwiki-latest-pages-articles.xml.bz2"],
    "stackexchange": ["https://archive.org/download/stackexchange/beer.stackexchange.com.7z"],
}
LOCAL = {
    "wikipedia": [
        "wikipedia/ltg/dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2",
        "wikipedia/en/gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    ],
    "stackexchange": ["stackexchange/beer.stackexchange.com/Posts.xml"],
}


def sample_inputs(slice_name: str, shared: str) -> list[str]:
    local = [os.path.join(shared, path) for path in LOCAL[slice_name]]
    if all(os.path.exists(path) for path in local):
        return local
    return REMOTE[slice_name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", default="../shared/data")
    parser.add_argument("--output", default="out")
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args(argv)
    lid = os.path.join(args.shared, "models/fasttext-lid/lid.176.ftz")
    options = {"stackexchange": {"lid_model": lid if os.path.exists(lid) else None}}
    for name, cls in registry().items():
        slc = cls(**options.get(name, {}))
        try:
            outcome = run_slice(slc, sample_inputs(name, args.shared), args.output, RunnerConfig(workers=args.workers))
        except UsageError as error:
            print(f"redpajama: error: {error}", file=sys.stderr)
            return 2
        print(summary(outcome.stats, outcome.slice_dir, outcome.reused))
    return 0


if __name__ == "__main__":
    sys.exit(main())
