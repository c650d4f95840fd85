"""Start-up time of ``lenna --help`` against ``python -c "import torch"``, as a ratio.

Both commands run alternately in fresh interpreters; medians over the rounds. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "lenna_help": [sys.executable, "-m", "lenna_core", "--help"],
    "import_torch": [sys.executable, "-c", "import torch"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({
        "rounds": args.rounds,
        "lenna_help_s": round(medians["lenna_help"], 4),
        "import_torch_s": round(medians["import_torch"], 4),
        "ratio": round(medians["lenna_help"] / medians["import_torch"], 3),
    }))


if __name__ == "__main__":
    main()
