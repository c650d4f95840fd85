"""Fuzz every reader of untrusted input (source specs, architecture objects, Graph IR JSON,
CSV imports, ONNX bytes and protos) with the strategies of tests/fuzz_strategies.py, 10,000
examples each by default. The property is the tests': reading fails only with a LennaError.

Prints JSON ``{reader: {examples, read, refused, failures, seconds, errors}}``: ``read`` and
``refused`` count the examples read and refused with a LennaError, ``failures`` those that
raised anything else, and ``errors`` the distinct failures (type, place, message, count).
Exits with 1 when any example failed.

    python bench/fuzz.py [--examples 10000] [--reader spec --reader onnx-proto ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_strategies import READERS, FuzzInputs, Reader, read_only_lenna_errors  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402


def fuzz(reader: Reader, examples: int) -> dict[str, object]:
    """Read ``examples`` generated inputs; count outcomes and the distinct failures."""
    outcomes: Counter[str] = Counter()
    errors: Counter[tuple[str, str, str]] = Counter()

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(reader.examples)
    def read(example: object) -> None:
        try:
            outcomes["read" if read_only_lenna_errors(reader, example) else "refused"] += 1
        except Exception as exc:  # every other error is a failure to count, not to stop at
            place = traceback.extract_tb(exc.__traceback__)[-1]
            errors[type(exc).__name__, f"{Path(place.filename).name}:{place.lineno}",
                   str(exc).splitlines()[0][:200] if str(exc) else ""] += 1

    start = time.perf_counter()
    read()
    failures = sum(errors.values())
    return {"examples": outcomes["read"] + outcomes["refused"] + failures,
            "read": outcomes["read"], "refused": outcomes["refused"], "failures": failures,
            "seconds": round(time.perf_counter() - start, 1),
            "errors": [{"type": kind, "at": at, "message": message, "count": count}
                       for (kind, at, message), count in errors.most_common()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000, help="Examples per reader.")
    parser.add_argument("--reader", action="append", default=[],
                        help="Fuzz only this reader (repeatable); default: all.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        inputs = FuzzInputs(Path(workdir))
        readers = [make(inputs) for make in READERS]
        unknown = set(args.reader) - {r.name for r in readers}
        if unknown:
            parser.error(f"unknown reader {', '.join(sorted(unknown))}; readers are "
                         f"{', '.join(r.name for r in readers)}")
        results = {r.name: fuzz(r, args.examples) for r in readers
                   if not args.reader or r.name in args.reader}
    print(json.dumps(results, indent=2))
    sys.exit(1 if any(r["failures"] for r in results.values()) else 0)


if __name__ == "__main__":
    main()
