"""Compare a slice with RedPajama's own output on any inputs:

    python -m tests.fidelity --slice stackexchange --input Posts.xml --reference rp.jsonl

RedPajama's output is its JSONL as written (one ``{"text", "meta"}`` per line). arXiv inputs
are bulk source tars or paper folders, Wikipedia inputs dumps; the deviations and their checks
are the same as in ``make test``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.fidelity import cases
from tests.fidelity.harness import DuplicateKey, compare, report

CASES = {"arxiv": cases.arxiv_case, "stackexchange": cases.stackexchange_case, "wikipedia": cases.wikipedia_case}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fidelity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--slice", choices=sorted(CASES), required=True)
    parser.add_argument("--input", nargs="+", required=True, help="the inputs RedPajama's code read")
    parser.add_argument("--reference", type=Path, required=True, help="RedPajama's output for them (JSONL)")
    args = parser.parse_args(argv)
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
