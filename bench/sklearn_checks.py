"""scikit-learn's ``check_estimator`` on every bundled estimator and the example plugin's.

Each check runs with the estimator's declared ``expected_failed_checks``; failures are
counted, not raised. Prints JSON: per estimator the checks passed, failed, declared not
applicable (expected to fail, with reasons), skipped by scikit-learn itself, the names of
any failures, and the seconds the checks took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from lenna_core.api import make_registry, optional

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lenna-example-plugin"


def estimator_classes(names: list[str]) -> list[type]:
    """The installed estimators (all, or those named) and the example plugin's power-law."""
    registry = make_registry()
    sys.path.insert(0, str(EXAMPLE))
    from lenna_example_plugin import PowerLawEstimator

    classes = [registry.get_available("estimator", n) for n in registry.names("estimator")]
    classes.append(PowerLawEstimator)
    return [cls for cls in classes if not names or cls.name in names]


def run_checks(cls: type) -> dict[str, object]:
    """The counts of one estimator's check results by status."""
    from sklearn.utils.estimator_checks import check_estimator

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            cls(), expected_failed_checks=dict(optional(cls, "expected_failed_checks")),
            on_fail=None, on_skip=None)
    statuses = [r["status"] for r in results]
    return {
        "passed": statuses.count("passed"),
        "failed": statuses.count("failed"),
        "declared_not_applicable": statuses.count("xfail"),
        "skipped": statuses.count("skipped"),
        "failures": sorted({r["check_name"] for r in results if r["status"] == "failed"}),
        "declared": dict(optional(cls, "expected_failed_checks")),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="estimators to check (default: all)")
    args = parser.parse_args()
    import sklearn

    report = {cls.name: run_checks(cls) for cls in estimator_classes(args.names)}
    print(json.dumps({"sklearn": sklearn.__version__, "estimators": report,
                      "total_failed": sum(r["failed"] for r in report.values())}, indent=2))


if __name__ == "__main__":
    main()
