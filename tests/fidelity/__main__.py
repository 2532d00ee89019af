"""Compare a slice with RedPajama's own output on any inputs:

    python -m tests.fidelity --slice stackexchange --input Posts.xml --reference rp.jsonl
    python -m tests.fidelity --slice github --input github_*.jsonl.gz repo/ --license repo/=mit

RedPajama's output is its JSONL as written (one ``{"text", "meta"}`` per line). arXiv inputs
are bulk source tars or paper folders, Wikipedia inputs dumps; GitHub's RedPajama output is
computed from the recipe (``tests/fidelity/github.py``), so it takes no ``--reference``, and
each repository folder needs the licence GitHub gives it (``--license FOLDER=KEY``, a
BigQuery licence key such as ``mit`` or ``apache-2.0``). The deviations and their checks are
the same as in ``make test``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from tests.fidelity import cases
from tests.fidelity.harness import DuplicateKey, compare, report

CASES = {"arxiv": cases.arxiv_case, "stackexchange": cases.stackexchange_case, "wikipedia": cases.wikipedia_case}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fidelity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--slice", choices=sorted([*CASES, "github"]), required=True)
    parser.add_argument("--input", nargs="+", required=True, help="the inputs RedPajama's code read")
    parser.add_argument("--reference", type=Path, help="RedPajama's output for them (JSONL; not for github)")
    parser.add_argument("--license", action="append", default=[], metavar="FOLDER=KEY",
                        help="github: the licence GitHub gives a repository folder")
    parser.add_argument("--tokenizer", type=Path, default=cases.TOKENIZER, help="github: the GPT-NeoX tokenizer.json")
    args = parser.parse_args(argv)
    if args.slice == "github":
        given = {os.path.normpath(folder): key for folder, _, key in (item.partition("=") for item in args.license)}
        licences = {path: given[os.path.normpath(path)] for path in args.input if os.path.normpath(path) in given}
        unknown = [path for path in args.input if os.path.isdir(path) and path not in licences]
        if args.reference or unknown:
            parser.error("github takes no --reference" if args.reference else f"--license FOLDER=KEY for {unknown[0]}")
        case = cases.github_case(args.input, licences, args.tokenizer)
    elif args.reference is None:
        parser.error(f"--reference is needed for {args.slice}")
    else:
        case = CASES[args.slice](args.input, args.reference)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            result = compare(case, Path(workdir))
        except DuplicateKey as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(report([result]))
    for key, difference in result.unexplained.items():
        print(f"UNEXPLAINED {key}: {difference}")
    return 1 if result.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
