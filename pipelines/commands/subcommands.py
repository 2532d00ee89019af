"""What each ``redpajama`` subcommand does once its arguments are parsed (:mod:`redpajama.pipelines.commands.cli`)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

from redpajama.core import s3, storage
from redpajama.core.errors import SourceError, UsageError
from redpajama.core.isolation import Budget
from redpajama.core.streams import Limits
from redpajama.pipelines.runs.resume import failure_listing
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.base import RunContext
from redpajama.slices.registry import registry


def _tokenizer(location: str | None) -> str:
    from redpajama.models import catalog

    return catalog.tokenizer_location(location)


def _existing_output(output: str) -> None:
    from redpajama.pipelines.commands.report import slice_folders

    with _broken_output_is_one_line():
        found = slice_folders(output)
    if not found:
        raise UsageError(f"{output}: no slice output found (folders such as wikipedia/ or common_crawl/)")


def cmd_slices() -> int:
    for name, cls in registry().items():
        print(f"{name}: {cls.summary}")
        print(f"  sources: {cls.describe_sources()}")
        print("  steps:")
        for number, line in enumerate(cls().step_descriptions(), 1):
            print(f"    {number}. {line}")
        print()
    return 0


def beam_filesystems_when_met() -> None:
    """Beam's file systems for every command, loaded when a path such as gs:// or hdfs:// is first met
    (importing Beam takes seconds; the Beam executor loads them when it is imported)."""
    storage.use_filesystems_for_schemes(lambda: importlib.import_module("redpajama.pipelines.beam").install_filesystems())


def cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from redpajama.pipelines.runs.run import check_output, input_roots, resolve_inputs, run_slice

    cls = registry()[args.slice]
    slc = cls(**{action.dest: getattr(args, action.dest) for action in _slice_actions(args.slice)})
    s3.pay_for_all(args.requester_pays)
    if args.input:
        inputs = resolve_inputs(args.input, args.limit, folders=cls.reads_folders)
    else:
        inputs = slc.default_inputs() if cls.limits_in_plan else slc.default_inputs()[: args.limit]
    config = RunnerConfig(
        runner=args.runner,
        workers=args.workers,
        project=args.project,
        region=args.region,
        temp_location=args.temp_location,
        staging_location=args.staging_location,
        setup_file=args.setup_file,
        sdk_container_image=args.sdk_container_image,
        job_name=args.job_name,
        job_endpoint=args.job_endpoint,
        environment=args.environment,
        worker_log_level="INFO" if args.debug else "ERROR",
        extra=beam_args,
    )
    if args.executor == "inprocess" and config.runner != "local":
        raise UsageError(f"--executor inprocess runs the recipe in this process: --runner {config.runner} needs "
                         "--executor beam")
    if config.runner == "dataflow":
        _default_setup_file(config)
    if args.executor == "beam":
        from redpajama.pipelines.beam.launch import check_launch

        check_launch(config, args.output, inputs)
    table = None
    query = slc.table_query()
    if query is not None and args.executor == "inprocess":
        raise UsageError("--bigquery reads a query's result table with Beam: --executor inprocess does not apply")
    if query is not None:
        if args.input or args.limit:
            raise UsageError(f"--bigquery reads the whole result of {args.slice}'s query: --input and --limit do not apply")
        from redpajama.pipelines.beam.bigquery import materialize

        if config.runner == "local":  # before the query is paid for
            check_output(args.output, os.path.join(args.output, slc.folder))
        table = materialize(query, args.project)
    context = RunContext(
        limits=Limits(int(args.max_record_mb * (1 << 20)), args.max_expansion),
        budget=Budget(args.doc_timeout, args.doc_memory_mb),
        input_roots=input_roots(args.input or [], inputs),
        file_limit=args.limit if cls.limits_in_plan else None,
        requester_pays=args.requester_pays,
        table=table,
    )
    outcome = run_slice(
        slc.with_context(context),
        inputs,
        args.output,
        _executor(args.executor, config),
        shard_bytes=int(args.shard_mb * (1 << 20)),
        num_shards=args.shards,
        overwrite=args.overwrite,
        retry_failed=args.retry_failed,
        quiet=not args.debug,
        tokenizer=_token_counter(args.count_tokens),
        keep_dropped=args.keep_dropped,
    )
    print(summary(outcome.stats, outcome.slice_dir, outcome.reused, outcome.finished))
    if not outcome.finished:
        print(f"redpajama: error: {outcome.stats['slice']}: every unit failed ({failure_listing(outcome.stats)}); "
              f"nothing was committed; the dead letters are in {outcome.slice_dir}/_temporary/_errors/ until the next "
              "run, which tries every input again", file=sys.stderr)
        return 1
    return 0


def _executor(name: str, config: RunnerConfig):
    if name == "inprocess":
        from redpajama.pipelines.inprocess.executor import InProcessExecutor

        return InProcessExecutor()
    from redpajama.pipelines.beam.executor import BeamExecutor

    return BeamExecutor(config)


def _token_counter(choice: str) -> str | None:
    """The tokenizer to count output tokens with, or None (not available offline, or 'off')."""
    from redpajama.models import catalog

    if choice == "off":
        return None
    if choice == "auto":
        return catalog.cached_copy(catalog.NEOX_TOKENIZER)
    return _tokenizer(choice)


def _slice_actions(slice_name: str):
    parser = argparse.ArgumentParser(add_help=False)
    registry()[slice_name].add_arguments(parser)
    return parser._actions


def _default_setup_file(config: RunnerConfig) -> None:
    if not config.setup_file and not config.sdk_container_image:
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))  # beside pipelines/
        candidate = os.path.join(root, "setup.py")
        if not os.path.exists(candidate):
            raise UsageError("--runner dataflow needs --setup-file (this package's setup.py) or --sdk-container-image")
        config.setup_file = candidate


def summary(stats: dict, slice_dir: str, reused: bool = False, finished: bool = True) -> str:
    """The closing summary of a run, a few aligned lines."""
    drops = ", ".join(f"{reason} {count:,}" for reason, count in sorted(stats["dropped"].items(), key=lambda kv: -kv[1]))
    head = "already complete (nothing to do)" if reused else f"done in {stats['wall_seconds']:.1f}s"
    if not finished:
        head = f"failed in {stats['wall_seconds']:.1f}s: every unit failed, nothing committed"
    failed = ""
    if stats["failed"]:
        failed = f"  ({failure_listing(stats)}; see _errors/" + ("; --retry-failed runs the slice again)" if reused else ")")
    tokens = f", {stats['tokens']:,} tokens" if stats.get("tokens") is not None else ""
    lines = [
        f"{stats['slice']}: {head} -> {slice_dir}",
        f"  read     {stats['read']:>10,}",
        f"  kept     {stats['kept']:>10,}",
        f"  dropped  {sum(stats['dropped'].values()):>10,}" + (f"  ({drops})" if drops else ""),
        f"  failed   {stats['failed']:>10,}" + failed,
        f"  bytes    {_mb(stats['bytes_in'])} of text in, {_mb(stats['bytes_out'])} out{tokens}",
    ]
    kept = stats.get("dropped_kept")
    if kept:
        lines.insert(4, f"  rejects  {kept['documents']:>10,}  kept in _dropped/<step>/<reason>/ "
                        f"(--keep-dropped {kept['fraction']:g})")
    return "\n".join(lines)


def _mb(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"


def cmd_models(args: argparse.Namespace) -> int:
    from pathlib import Path

    from redpajama.pipelines.commands.models_build import BuildSettings, build
    from redpajama.pipelines.runs.run import resolve_inputs

    manifest = build(BuildSettings(
        wikipedia=args.wikipedia, commoncrawl=resolve_inputs(args.commoncrawl, None), output=Path(args.output),
        language=args.language, lid_model=args.lid_model, vocab_size=args.vocab_size, order=args.order, seed=args.seed,
        max_documents=args.max_documents, wikiref_pages=resolve_inputs(args.wikiref_pages or [], None),
    ))
    cutoffs = Path(args.output, "cutoff.csv").read_text().splitlines()
    rows = {line.split(",")[0]: line.split(",")[1] for line in cutoffs[1:]}
    print(f"models: {args.language} models in {args.output} ({manifest['seconds']}s); "
          f"perplexity cutoffs head < {rows['30']}, middle < {rows['60']}")
    print(f"  {classifier_summary(manifest)}")
    return 0


def classifier_summary(manifest: dict) -> str:
    """One line on a built Wikipedia-reference classifier: its recipe, accuracy and keep rate."""
    wikiref = manifest["parameters"]["wikiref"]
    kind = wikiref.get("positives", {}).get("kind", "articles")
    recipe = ("RedPajama's recipe (pages cited by Wikipedia)" if kind == "cited-pages"
              else "offline stand-in (Wikipedia articles as positives)")
    rate = wikiref.get("keep_rate", {})
    kept = f"keeps {rate['kept']}/{rate['documents']} ({rate['rate']:.1%})" if rate.get("documents") else "keep rate unknown"
    return (f"wikiref classifier: {recipe}; {wikiref['examples']['wiki']} positives, {wikiref['examples']['cc']} negatives, "
            f"held-out accuracy {wikiref['held_out_accuracy']}; {kept} of CommonCrawl head+middle at wiki_prob >= 0.25")


@contextlib.contextmanager
def _broken_output_is_one_line():
    """An output file that is cut, corrupt or not what it should be is the user's to fix: one line
    naming it (as ``show`` says it), not a failed run."""
    try:
        yield
    except SourceError as error:
        raise UsageError(str(error)) from None


def cmd_report(args: argparse.Namespace) -> int:
    import sys

    from redpajama.pipelines.commands.report import build_report, markdown, write_report
    from redpajama.pipelines.runs.tokens import choose_tokenizer

    _existing_output(args.output)
    tokenizer = choose_tokenizer(args.tokenizer)
    print(tokenizer.says, file=sys.stderr, flush=True)
    with _broken_output_is_one_line():
        report = build_report(args.output, tokenizer.location, eod=not args.no_eod,
                              processes=args.workers or os.cpu_count() or 1, cc_mirror=args.cc_mirror,
                              arxiv_manifest=args.arxiv_manifest, arxiv_until=args.arxiv_until,
                              tokenizer_says=tokenizer.says)
    paths = write_report(report, args.output)
    print(markdown(report))
    print("written: " + ", ".join(paths))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import sys

    from redpajama.pipelines.commands.report import slice_folders
    from redpajama.pipelines.commands.sample import check_dest, fractions_for_budget, sample, slice_tokens
    from redpajama.pipelines.runs.tokens import choose_tokenizer

    _existing_output(args.output)
    check_dest(args.output, args.dest)
    tokenizer = None
    if args.tokenizer or args.tokens:
        choice = choose_tokenizer(args.tokenizer)
        if choice.location is None:
            raise UsageError(f"--tokens needs the tokenizer to count what it delivers; {choice.says}")
        print(choice.says, file=sys.stderr, flush=True)
        tokenizer = choice.location
    available: dict[str, int] = {}
    with _broken_output_is_one_line():
        if args.tokens:
            available = slice_tokens(args.output, slice_folders(args.output), tokenizer)
            fractions = fractions_for_budget(args.tokens, available)
        else:
            fractions = {"*": args.fraction}
        report = sample(args.output, args.dest, fractions, args.seed, tokenizer, args.tokens, available)
    for row in report["slices"]:
        tokens = f", {row['tokens']:,} tokens" if row["tokens"] is not None else ""
        print(f"{row['slice']}: {row['documents']:,} of {row['read']:,} documents{tokens} -> {row['file']}")
    if "budget" in report:
        budget = report["budget"]
        reasons = budget["short_because"]
        print(f"delivered {budget['delivered']:,} of {budget['asked']:,} tokens asked "
              f"({budget['delivered'] / budget['asked']:.1%})"
              + (": less than asked, because " + "; ".join(reasons) if reasons else ""))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import sys

    from redpajama.pipelines.commands import show

    conditions = [show.parse_where(text) for text in args.where]
    with _broken_output_is_one_line():
        files = show.dropped_shards(args.target, args.dropped) if args.dropped else show.output_shards(args.target)
    result = show.show(files, args.n, conditions, args.width, args.json, sys.stdout)
    sys.stdout.flush()
    print(show.summary(result, args.target, conditions, args.dropped), file=sys.stderr)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from redpajama.pipelines.fetch.pages import FetchSettings, run_fetch
    from redpajama.pipelines.runs.run import resolve_inputs

    if "://" in args.output:
        raise UsageError(f"--output {args.output}: fetch-pages writes to a local folder")
    settings = FetchSettings(
        inputs=resolve_inputs(args.input, None), output=Path(args.output), from_crawl=args.from_crawl,
        cdx_server=args.cdx_server, data_server=args.data_server, workers=args.workers, per_host=args.per_host,
        delay=args.delay, timeout=args.timeout, retries=args.retries, max_bytes=int(args.max_page_mb * (1 << 20)),
        max_pages=args.max_pages, language=args.language, user_agent=args.user_agent,
    )
    stats = run_fetch(settings)
    failed = ", ".join(f"{reason} {count:,}" for reason, count in sorted(stats["this_run"]["failed"].items(),
                                                                           key=lambda kv: -kv[1]))
    urls = stats["urls"]
    print(f"fetch-pages ({stats['source']}): {stats['this_run']['fetched']:,} pages fetched in "
          f"{stats['this_run']['seconds']:.1f}s -> {args.output}")
    print(f"  listed {urls['listed']:,}, done before {urls['done_before']:,}, duplicates {urls['duplicate']:,}"
          + (f", not attempted {urls['not_attempted']:,}" if urls["not_attempted"] else ""))
    print(f"  failed {sum(stats['this_run']['failed'].values()):,}" + (f" ({failed})" if failed else ""))
    print(f"  in total {stats['total']['fetched']:,} pages in {args.output}")
    return 0
