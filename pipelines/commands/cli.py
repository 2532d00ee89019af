"""The ``redpajama`` command: ``slices`` and ``run``. User errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import signal
import sys
from typing import NoReturn

from redpajama.core.errors import UsageError
from redpajama.core.isolation import Budget
from redpajama.core.streams import Limits
from redpajama.models.catalog import ModelNotFound
from redpajama.pipelines.commands.subcommands import (
    beam_filesystems_when_met,
    cmd_fetch,
    cmd_models,
    cmd_report,
    cmd_run,
    cmd_sample,
    cmd_show,
    cmd_slices,
)
from redpajama.pipelines.runs.engine import Interrupted
from redpajama.pipelines.runs.lock import OutputBusy
from redpajama.pipelines.runs.runner_config import RUNNERS
from redpajama.slices.registry import registry

EXIT_USAGE = 2
EXIT_FAILED = 1


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports mistakes in a single line (with a suggestion for typos)."""

    def error(self, message: str) -> NoReturn:
        if "invalid choice" in message:
            message = _with_suggestion(message)
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _with_suggestion(message: str) -> str:
    try:
        given = message.split("invalid choice: ")[1].split("'")[1]
        choices = message.split("(choose from ")[1].rstrip(")").replace("'", "").split(", ")
    except IndexError:
        return message
    close = difflib.get_close_matches(given, choices, n=1)
    return message + (f"; did you mean '{close[0]}'?" if close else "")


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="redpajama", description="RedPajama-Data-1T as Apache Beam pipelines.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Beam's logs")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    commands.add_parser("slices", help="list slices, their sources and recipe steps")
    _add_models_parser(commands)
    _add_fetch_parser(commands)
    _add_report_parsers(commands)
    _add_show_parser(commands)
    run = commands.add_parser("run", help="run one slice", description="Run one slice.")
    slices = run.add_subparsers(dest="slice", required=True, metavar="SLICE", parser_class=OneLineParser)
    for name, cls in registry().items():
        sub = slices.add_parser(name, help=cls.summary, description=cls.describe_sources())
        _add_run_arguments(sub)
        cls.add_arguments(sub.add_argument_group(f"{name} options"))
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", metavar="PATH", help="files, globs or URLs (default: the manifest)")
    parser.add_argument("--limit", type=_positive, help="read only the first N input files (sorted)")
    parser.add_argument("--output", required=True, help="output directory (local or gs://)")
    parser.add_argument("--executor", choices=("beam", "inprocess"), default="beam",
                        help="beam (default: a Beam pipeline on --runner) or inprocess (this process, no Beam; small inputs)")
    parser.add_argument("--runner", choices=RUNNERS, default="local")
    parser.add_argument("--workers", type=_not_negative, default=0,
                        help="local processes (default: cores) or Dataflow max workers")
    parser.add_argument("--shard-mb", type=_positive_float, default=256.0, help="uncompressed MB of JSONL per output shard")
    parser.add_argument("--max-record-mb", type=_positive_float, default=Limits.max_record_bytes / (1 << 20),
                        help="longest line, page or record an input may hold (default: %(default)g); longer fails its unit")
    parser.add_argument("--max-expansion", type=_positive_float, default=Limits.max_expansion,
                        help="most decompressed bytes per compressed byte of an input (default: %(default)g); "
                        "more is a decompression bomb and fails its unit")
    parser.add_argument("--doc-timeout", type=_not_negative_float, default=Budget.seconds, metavar="SECONDS",
                        help="CPU seconds one document may spend in a step that can run away (Wikipedia and LaTeX "
                        "cleaning; default: %(default)g, 0: no budget); longer fails that document as <step>_timeout")
    parser.add_argument("--doc-memory-mb", type=_positive, default=Budget.memory_mb, metavar="MB",
                        help="memory one document may take in such a step (default: %(default)d); more fails it "
                        "as <step>_out_of_memory")
    parser.add_argument("--shards", type=_positive, help="fixed number of output shards")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run with other settings")
    parser.add_argument("--requester-pays", action="store_true",
                        help="read s3:// inputs with RequestPayer=requester: you pay their transfer (always so for "
                        "s3://arxiv, whose bucket requires it)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="run a finished run that had failed units again (the whole slice)")
    parser.add_argument("--keep-dropped", nargs="?", const=1.0, type=_fraction, metavar="FRACTION",
                        help="write every step's rejects (or this fraction of them, chosen by a seeded hash of "
                        "meta.id) under _dropped/<step>/<reason>/ with the step's scores in meta")
    parser.add_argument("--count-tokens", default="auto", metavar="TOKENIZER",
                        help="GPT-NeoX tokenizer.json for the token count in stats.json; 'auto' (default) uses the "
                        "one in the model cache if there, 'off' skips counting")
    dataflow = parser.add_argument_group("Dataflow")
    dataflow.add_argument("--project")
    dataflow.add_argument("--region")
    dataflow.add_argument("--temp-location")
    dataflow.add_argument("--staging-location")
    dataflow.add_argument("--setup-file", help="this package's setup.py (default: found beside the package)")
    dataflow.add_argument("--sdk-container-image")
    dataflow.add_argument("--job-name")
    portable = parser.add_argument_group("portable runner (Flink, Spark or a local job service)")
    portable.add_argument("--job-endpoint", help="the job service, host:port (default: one embedded in this process)")
    portable.add_argument("--environment", metavar="TYPE[=CONFIG]",
                          help="where the workers run, e.g. EXTERNAL=localhost:50000 (a worker pool) or DOCKER=image")


def _add_models_parser(commands) -> None:
    from redpajama.models.catalog import built_folder

    group = commands.add_parser("models", help="build the offline models").add_subparsers(
        dest="models_command", required=True, parser_class=OneLineParser
    )
    build = group.add_parser(
        "build",
        help="train sentencepiece + KenLM, their perplexity cutoffs and the Wikipedia-reference classifier",
        description="Train the offline models from Wikipedia slice output and CommonCrawl WET/WARC files.",
    )
    build.add_argument("--wikipedia", nargs="+", required=True, metavar="PATH",
                       help="Wikipedia slice output (folder or .jsonl.zst files): LM text and classifier positives")
    build.add_argument("--commoncrawl", nargs="+", required=True, metavar="PATH",
                       help="WET/WARC files (local or URLs): the cutoff reference sample and classifier negatives")
    build.add_argument("--wikiref-pages", nargs="+", metavar="WARC",
                       help="WARC files of pages cited by Wikipedia (fetch-pages): the classifier's positives, as "
                       "RedPajama's recipe; without them Wikipedia articles stand in")
    build.add_argument("--language", default="en", help="the language of every model (default: %(default)s)")
    build.add_argument("--output", default=str(built_folder()), help="folder for the models (default: %(default)s)")
    build.add_argument("--lid-model", help="fastText language ID model for the reference sample")
    build.add_argument("--vocab-size", type=_positive, default=8000)
    build.add_argument("--order", type=_positive, default=5)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--max-documents", type=_positive, default=200_000)


def _add_fetch_parser(commands) -> None:
    from redpajama.pipelines.fetch.pages import FetchSettings

    defaults = FetchSettings([], None)  # type: ignore[arg-type]
    fetch = commands.add_parser(
        "fetch-pages", help="fetch cited pages into WARC files (live sites or a CommonCrawl crawl)",
        description="Fetch the pages of URL lists (such as wikiref-urls' sample) into WARC files, politely and "
        "resumably. With --from-crawl the pages come from a CommonCrawl crawl instead of their sites.",
    )
    fetch.add_argument("--input", nargs="+", required=True, metavar="PATH", help="URL lists, one URL per line (.gz/.zst too)")
    fetch.add_argument("--output", required=True, help="local folder for the WARC files, fetched.tsv and stats.json")
    fetch.add_argument("--from-crawl", metavar="CC-MAIN-YYYY-WW", type=_crawl_name,
                       help="take each page from this CommonCrawl crawl (CDX index + range request), not its site")
    fetch.add_argument("--cdx-server", default=defaults.cdx_server, help="CDX index server (default: %(default)s)")
    fetch.add_argument("--data-server", default=defaults.data_server, help="WARC data server (default: %(default)s)")
    fetch.add_argument("--workers", type=_positive, default=defaults.workers, help="fetches at a time (default: %(default)s)")
    fetch.add_argument("--per-host", type=_positive, default=defaults.per_host,
                       help="fetches at a time per host (default: %(default)s)")
    fetch.add_argument("--delay", type=_not_negative_float, default=defaults.delay,
                       help="seconds between two requests to a host (default: %(default)s; robots.txt Crawl-delay wins)")
    fetch.add_argument("--timeout", type=_positive_float, default=defaults.timeout,
                       help="seconds each connect and read may wait (default: %(default)s, as RedPajama's wget)")
    fetch.add_argument("--retries", type=_not_negative, default=defaults.retries,
                       help="tries again after timeouts, resets, 429 and 5xx, with doubling back-off (default: %(default)s)")
    fetch.add_argument("--max-page-mb", type=_positive_float, default=defaults.max_bytes / (1 << 20),
                       help="largest page body kept (default: %(default)g)")
    fetch.add_argument("--max-pages", type=_positive, help="stop once this many pages are fetched (RedPajama: 300000)")
    fetch.add_argument("--language", help="Accept-Language sent to sites (the wiki's language)")
    fetch.add_argument("--user-agent", default=defaults.user_agent)


def _yymm(text: str) -> str:
    if not (len(text) == 4 and text.isdigit() and 1 <= int(text[2:]) <= 12):
        raise argparse.ArgumentTypeError(f"expected a month as YYMM, got {text!r}")
    return text


def _crawl_name(text: str) -> str:
    import re

    if not re.fullmatch(r"CC-MAIN-\d{4}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"expected a crawl name like CC-MAIN-2023-14, got {text!r}")
    return text


def _add_report_parsers(commands) -> None:
    report = commands.add_parser("report", help="token counts per slice vs the published ones (md, json, png)")
    report.add_argument("output", help="an output folder holding slice folders (local or gs://)")
    report.add_argument("--tokenizer", help="tokenizer.json (path, URL, gs://) or hub name (default: EleutherAI/gpt-neox-20b)")
    report.add_argument("--no-eod", action="store_true", help="do not count one end-of-document token per document")
    report.add_argument("--workers", type=int, default=0, help="processes (default: cores)")
    report.add_argument("--cc-mirror", help="base URL replacing https://data.commoncrawl.org for the wet.paths.gz listings")
    report.add_argument("--arxiv-manifest", metavar="PATH",
                        help="arXiv's arXiv_src_manifest.xml (s3://arxiv/src/, requester pays): the full count of source tars")
    report.add_argument("--arxiv-until", metavar="YYMM", type=_yymm, help="count only arXiv tars up to this month")
    sample = commands.add_parser("sample", help="a deterministic subset of an output, like RedPajama-Data-1T-Sample")
    sample.add_argument("output", help="an output folder holding slice folders (local or gs://)")
    sample.add_argument("--dest", required=True, help="folder for <slice>_sample.jsonl")
    amount = sample.add_mutually_exclusive_group(required=True)
    amount.add_argument("--fraction", type=_fraction, help="share of documents per slice (1T-Sample: 0.001)")
    amount.add_argument("--tokens", type=_positive, help="token budget, split by the published slice proportions")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--tokenizer", help="GPT-NeoX-20B tokenizer.json for token counts (path, URL or gs://)")


def _add_show_parser(commands) -> None:
    from redpajama.pipelines.commands.show import ALL_REASONS

    show = commands.add_parser(
        "show", help="print a few documents of a slice's output (or of its rejects)",
        description="Print the first documents of a slice folder, a shard or a glob of shards: meta on one line, "
        "text cut to --width. Reads shards as streams and stops after --n documents.",
    )
    show.add_argument("target", metavar="OUT/SLICE", help="a slice folder (out/wikipedia), a shard, or a glob of shards")
    show.add_argument("--n", type=_positive, default=5, help="documents to show (default: %(default)s)")
    show.add_argument("--where", action="append", default=[], metavar="meta.KEY=VALUE",
                      help="show only documents whose meta matches (=, !=, <, <=, >, >=, ~ for a regular "
                      "expression; text~REGEX matches the text); repeat to require several")
    show.add_argument("--dropped", nargs="?", const=ALL_REASONS, metavar="REASON",
                      help="show rejects kept in _dropped/ instead: a reason (near_duplicate) or STEP/REASON; "
                      "alone: every reason")
    show.add_argument("--width", type=_not_negative, default=300,
                      help="characters of text shown per document (default: %(default)s; 0: all of it)")
    show.add_argument("--json", action="store_true", help="print the records as JSON lines, whole (for jq)")


def _number_type(kind: type, accept, expected: str, echo_text: bool = False):
    """An argparse type: ``kind`` (int or float) parsed from the text and held to ``accept``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text if echo_text else value}")
        return value

    return parse


_fraction = _number_type(float, lambda value: 0 < value <= 1, "a fraction in (0, 1]")
_not_negative = _number_type(int, lambda value: value >= 0, "a number >= 0")
_not_negative_float = _number_type(float, lambda value: 0 <= value < float("inf"), "a number >= 0", echo_text=True)
_positive_float = _number_type(float, lambda value: 0 < value < float("inf"), "a number > 0", echo_text=True)
_positive = _number_type(int, lambda value: value >= 1, "a number >= 1")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1 :]
    debug = "--debug" in argv  # accepted anywhere before "--"
    argv = [arg for arg in argv if arg != "--debug"]
    _quiet_logs(debug)
    signal.signal(signal.SIGTERM, _interrupted)  # SIGINT raises KeyboardInterrupt already
    if debug:
        os.environ["REDPAJAMA_DEBUG"] = "1"
    args = make_parser().parse_args(argv)
    args.debug = debug
    beam_filesystems_when_met()  # again, should a former command in this process have installed others
    try:
        if args.command == "slices":
            return cmd_slices()
        if args.command == "models":
            return cmd_models(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "show":
            return cmd_show(args)
        if args.command == "fetch-pages":
            return cmd_fetch(args)
        return cmd_run(args, beam_args)
    except (UsageError, ModelNotFound, OutputBusy) as error:  # a missing model is the user's to fix, like a typo
        print(f"redpajama: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as stop:
        print(f"redpajama: interrupted ({stop}); rerun the same command to finish", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("redpajama: interrupted (SIGINT); rerun the same command to finish", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    except Exception as error:
        if args.debug:
            raise
        print(f"redpajama: run failed: {type(error).__name__}: {error} (--debug for details)", file=sys.stderr)
        return EXIT_FAILED


beam_filesystems_when_met()  # on import too: processes spawned by a command (token counts) import this module only


def _interrupted(signum, frame) -> NoReturn:
    raise Interrupted(signum)


def _quiet_logs(debug: bool) -> None:
    logging.basicConfig(level=logging.INFO if debug else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        logging.getLogger().setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
