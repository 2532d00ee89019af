"""Run every slice on a small real sample and print the summaries (the README's first command).

Each slice names its sample in its manifest (``"demo"``, see :class:`~redpajama.slices.manifest.DemoSample`):
files under ``--shared`` (the project's sample data folder) when they are there, else a public
sample (the Latgalian Wikipedia, beer.stackexchange.com, the first WET file of CommonCrawl
2019-30, the first C4 file...), or installed packages' sources with their licence files (GitHub).
A slice whose recipe needs the offline models runs after the slice they learn from, and they are
built first (``models build``) from that slice's output and this slice's sample. A slice without
a sample is skipped, saying so.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redpajama.core import storage
from redpajama.core.errors import UsageError
from redpajama.models import catalog
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.commands.subcommands import summary
from redpajama.pipelines.runs.run import run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.base import RunContext, Slice
from redpajama.slices.manifest import DemoSample
from redpajama.slices.registry import registry

SHARED = "{shared}/"  # an option naming a file of the sample data
TOKENIZER = "{tokenizer}"  # an option naming the tokenizer the demo counts with
REPOSITORIES = "_sample-repositories"  # installed packages copied as repositories, under the output


@dataclass
class DemoRun:
    """One slice of the demo, planned: what it reads and with which options."""

    name: str
    inputs: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    context: RunContext = field(default_factory=RunContext)
    models_from: str | None = None  # the slice whose output the offline models are built from first


def package_repositories(folder: Path, packages: tuple[str, ...]) -> list[str]:
    """Installed packages' sources with their licence file, as repository folders (GitHub's sample)."""
    import shutil
    from importlib import import_module, metadata

    repos = []
    for package in packages:
        target = folder / package
        if not target.exists():
            source = Path(import_module(package).__file__).parent
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            licence = next(f for f in metadata.distribution(package).files if "LICENSE" in f.name.upper())
            shutil.copy(licence.locate(), target / "LICENSE")
        repos.append(str(target))
    return repos


def sample_inputs(sample: DemoSample, shared: str, output: str) -> list[str]:
    """The sample's files in ``shared``, else its public sample; none for a slice without one."""
    if sample.packages:
        return package_repositories(Path(output) / REPOSITORIES, sample.packages)
    local = [os.path.join(shared, path) for path in sample.local]
    if local and all(glob.glob(path) for path in local):
        return sorted(found for path in local for found in glob.glob(path))
    return list(sample.remote)


def sample_options(sample: DemoSample, shared: str, tokenizer: str | None) -> dict[str, Any]:
    """The sample's slice options: a file of the sample data when it is there (else the slice's
    default), the demo's tokenizer for ``{tokenizer}``."""
    options = {}
    for key, value in sample.options.items():
        if isinstance(value, str) and value.startswith(SHARED):
            path = os.path.join(shared, value[len(SHARED):])
            value = path if os.path.exists(path) else None
        elif value == TOKENIZER:
            value = tokenizer
        options[key] = value
    return options


def demo_order(slices: dict[str, type[Slice]]) -> list[str]:
    """Slices by name, each after the slice its offline models learn from."""
    ordered: list[str] = []

    def add(name: str) -> None:
        if name in ordered:
            return
        sample = slices[name].demo_sample()
        if sample is not None and sample.models_from in slices:
            add(sample.models_from)
        ordered.append(name)

    for name in slices:
        add(name)
    return ordered


def plan(shared: str, output: str, tokenizer: str | None) -> tuple[list[DemoRun], list[str]]:
    """The slices the demo runs, in order, and the names of those it skips (no sample to run)."""
    slices = registry()
    runs, skipped = [], []
    for name in demo_order(slices):
        sample = slices[name].demo_sample()
        inputs = sample_inputs(sample, shared, output) if sample is not None else []
        if not inputs:
            skipped.append(name)
            continue
        runs.append(DemoRun(name, inputs, sample_options(sample, shared, tokenizer),
                            RunContext(file_limit=sample.file_limit), sample.models_from))
    return runs, skipped


def _first_wet_files(listing: str, count: int = 1) -> list[str]:
    with storage.open_range(listing) as stream:
        paths = gzip.decompress(stream.read()).decode().split()
    return ["https://data.commoncrawl.org/" + path for path in paths[:count]]


def ensure_models(wikipedia_dir: str, cc_inputs: list[str], lid: str | None, wikiref_pages: list[str]) -> None:
    """Build the offline models unless a build is already in the model cache; say which classifier."""
    import json

    from redpajama.pipelines.commands.subcommands import classifier_summary

    if catalog.built_models() is None:
        from redpajama.pipelines.commands.models_build import BuildSettings, build

        reference = _first_wet_files(cc_inputs[0]) if cc_inputs[0].endswith(".paths.gz") else cc_inputs
        build(BuildSettings(wikipedia=[wikipedia_dir], commoncrawl=reference, output=catalog.built_folder(),
                            lid_model=lid, wikiref_pages=wikiref_pages))
    manifest = json.loads((catalog.built_folder() / catalog.BUILT_MANIFEST).read_text("utf-8"))
    print(f"models ({catalog.built_folder()}): {classifier_summary(manifest)}")


def demo_tokenizer(shared: str):
    """The GPT-NeoX-20B tokenizer for the demo's token counts, kept in the model cache so that
    ``redpajama report`` and ``sample --tokens`` find it later without the network: the sample
    data's copy is put there when the cache has none; else the usual download is tried."""
    from redpajama.pipelines.runs.tokens import choose_tokenizer

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
    choice = demo_tokenizer(args.shared)
    print(choice.says + ("" if choice.location else " (in every run of the demo)"), file=sys.stderr, flush=True)
    tokenizer = choice.location
    slices = registry()
    try:
        runs, skipped = plan(args.shared, args.output, tokenizer)
        for name in skipped:
            print(f"{name}: no public sample to run without {args.shared}; skipped", file=sys.stderr)
        for run in runs:
            if run.models_from:
                ensure_models(str(Path(args.output) / slices[run.models_from].folder), run.inputs,
                              run.options.get("lid_model"), args.wikiref_pages)
            slc = slices[run.name](context=run.context, **run.options)
            executor = BeamExecutor(RunnerConfig(workers=args.workers))
            outcome = run_slice(slc, run.inputs, args.output, executor, tokenizer=tokenizer)
            print(summary(outcome.stats, outcome.slice_dir, outcome.reused))
        from redpajama.pipelines.commands.report import build_report, markdown, write_report

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
