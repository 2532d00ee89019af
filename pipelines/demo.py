"""Run every slice on a small real sample and print the summaries (the README's first command).

Samples come from ``--shared`` (the project's sample data folder) when it is there, else
from the real sources: the complete Latgalian Wikipedia, beer.stackexchange.com and the
first WET file of CommonCrawl 2019-30, the first C4 file); GitHub runs on installed packages'
sources with their licence files. The CommonCrawl slice needs the offline models:
they are built first (``models build``) from the Wikipedia output and the WET sample.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import sys
from pathlib import Path

from redpajama.core import storage
from redpajama.core.errors import UsageError
from redpajama.models import catalog
from redpajama.pipelines.commands import summary
from redpajama.pipelines.options import RunnerConfig
from redpajama.pipelines.run import run_slice
from redpajama.slices.base import RunContext
from redpajama.slices.registry import registry

CC_LISTING = "https://data.commoncrawl.org/crawl-data/CC-MAIN-2019-30/wet.paths.gz"
REMOTE = {
    "wikipedia": [
        "https://dumps.wikimedia.org/ltgwiki/latest/ltgwiki-latest-pages-articles.xml.bz2",
        "https://dumps.wikimedia.org/enwiki/latest/enwiki-latest-pages-articles1.xml-p1p41242.bz2",
    ],
    "stackexchange": ["https://archive.org/download/stackexchange/beer.stackexchange.com.7z"],
    "commoncrawl": [CC_LISTING],
    "c4": ["https://huggingface.co/datasets/allenai/c4/resolve/main/en/c4-train.00000-of-01024.json.gz"],
    "arxiv": [],  # arXiv's bulk sources are requester-pays on S3: no anonymous sample
    "books": [],
    "wikiref-urls": ["https://dumps.wikimedia.org/enwiki/latest/enwiki-latest-pages-articles1.xml-p1p41242.bz2"],
}
LOCAL = {
    "wikipedia": [
        "wikipedia/ltg/dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2",
        "wikipedia/en/gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    ],
    "stackexchange": ["stackexchange/beer.stackexchange.com/Posts.xml"],
    "commoncrawl": [
        "commoncrawl/wet/CC-MAIN-2019-30-repacked-00000.warc.wet.gz",
        "commoncrawl/wet/CC-MAIN-2019-30-repacked-00001.warc.wet.gz",
    ],
    "c4": ["c4/hf-datasets-dummy-en/c4-train.00000-of-01024.json.gz"],
    "arxiv": ["arxiv"],
    "books": ["books/gutenberg/*/*.txt", "books/gutenberg/*/old/*.txt"],
    "wikiref-urls": ["wikipedia/en/gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"],
}
ORDER = ("wikipedia", "stackexchange", "commoncrawl")  # CommonCrawl's models learn from Wikipedia's output
DEMO_PACKAGES = ("click", "mwparserfromhell", "py7zr")  # BSD-3-Clause, MIT, and LGPL (dropped by licence)


def package_repositories(folder: Path) -> list[str]:
    """Installed packages' sources with their licence file, as repository folders (GitHub's sample)."""
    import shutil
    from importlib import import_module, metadata

    repos = []
    for package in DEMO_PACKAGES:
        target = folder / package
        if not target.exists():
            source = Path(import_module(package).__file__).parent
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            licence = next(f for f in metadata.distribution(package).files if "LICENSE" in f.name.upper())
            shutil.copy(licence.locate(), target / "LICENSE")
        repos.append(str(target))
    return repos


def sample_inputs(slice_name: str, shared: str) -> list[str]:
    """The slice's sample in ``shared``, else its public sample; none for a slice without one."""
    local = [os.path.join(shared, path) for path in LOCAL.get(slice_name, [])]
    if local and all(glob.glob(path) for path in local):
        return sorted(found for path in local for found in glob.glob(path))
    return REMOTE.get(slice_name, [])


def _first_wet_files(listing: str, count: int = 1) -> list[str]:
    with storage.open_range(listing) as stream:
        paths = gzip.decompress(stream.read()).decode().split()
    return ["https://data.commoncrawl.org/" + path for path in paths[:count]]


def ensure_models(wikipedia_dir: str, cc_inputs: list[str], lid: str | None, wikiref_pages: list[str]) -> None:
    """Build the offline models unless a build is already in the model cache; say which classifier."""
    import json

    from redpajama.pipelines.commands import classifier_summary

    if catalog.built_models() is None:
        from redpajama.pipelines.models_build import BuildSettings, build

        reference = _first_wet_files(cc_inputs[0]) if cc_inputs[0].endswith(".paths.gz") else cc_inputs
        build(BuildSettings(wikipedia=[wikipedia_dir], commoncrawl=reference, output=catalog.built_folder(),
                            lid_model=lid, wikiref_pages=wikiref_pages))
    manifest = json.loads((catalog.built_folder() / catalog.BUILT_MANIFEST).read_text("utf-8"))
    print(f"models ({catalog.built_folder()}): {classifier_summary(manifest)}")


def demo_tokenizer(shared: str):
    """The GPT-NeoX-20B tokenizer for the demo's token counts, kept in the model cache so that
    ``redpajama report`` and ``sample --tokens`` find it later without the network: the sample
    data's copy is put there when the cache has none; else the usual download is tried."""
    from redpajama.pipelines.tokens import choose_tokenizer

    local = os.path.join(shared, "models/gpt-neox-20b/20B_tokenizer.json")
    if catalog.cached_copy(catalog.NEOX_TOKENIZER) is None and os.path.isfile(local):
        catalog.install(catalog.NEOX_TOKENIZER, local)
    return choose_tokenizer(None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", default="../shared/data")
    parser.add_argument("--output", default="out")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--wikiref-pages", nargs="*", default=[], metavar="WARC",
                        help="pages cited by Wikipedia (fetch-pages output) for RedPajama's classifier recipe")
    args = parser.parse_args(argv)
    lid_path = os.path.join(args.shared, "models/fasttext-lid/lid.176.ftz")
    lid = lid_path if os.path.exists(lid_path) else None
    choice = demo_tokenizer(args.shared)
    print(choice.says + ("" if choice.location else " (in every run of the demo)"), file=sys.stderr, flush=True)
    tokenizer = choice.location
    options = {
        "stackexchange": {"lid_model": lid},
        "commoncrawl": {"lid_model": lid, "context": RunContext(file_limit=1)},
        "arxiv": {"lid_model": lid},
        "github": {"tokenizer": tokenizer},
        "wikiref-urls": {"sample": 200},
    }
    slices = registry()
    try:
        for name in [*ORDER, *(n for n in slices if n not in ORDER)]:
            if name == "github":
                inputs = package_repositories(Path(args.output) / "_sample-repositories")
            else:
                inputs = sample_inputs(name, args.shared)
            if not inputs:
                print(f"{name}: no public sample to run without {args.shared}; skipped", file=sys.stderr)
                continue
            if name == "commoncrawl":
                ensure_models(str(Path(args.output) / "wikipedia"), inputs, lid, args.wikiref_pages)
            slc = slices[name](**options.get(name, {}))
            outcome = run_slice(slc, inputs, args.output, RunnerConfig(workers=args.workers), tokenizer=tokenizer)
            print(summary(outcome.stats, outcome.slice_dir, outcome.reused))
        from redpajama.pipelines.report import build_report, markdown, write_report

        report = build_report(args.output, tokenizer, processes=args.workers or os.cpu_count() or 1,
                              tokenizer_says=choice.says)
        write_report(report, args.output)
        print(markdown(report))
    except (UsageError, catalog.ModelNotFound) as error:
        print(f"redpajama: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
