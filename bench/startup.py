"""Start-up: how long the shipped commands take, whole process, as users run them.

Each command runs 5 times (3 with --quick) and the median counts. Goals on the 2-core machine:
``coursemart --help`` at most 0.3 s, ``coursemart config`` 0.5 s, ``coursemart status`` and a
``coursemart load`` with nothing to do (SQLite) 0.8 s. Anchors, same run: ``python -c pass``
(the interpreter alone) and ``python -c "import click"``.

    python bench/startup.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import (  # noqa: E402
    Measurement,
    Results,
    add_run_options,
    coursemart_command,
    run_command,
    table,
)

GOALS = {
    "coursemart --help": 0.3,
    "coursemart config": 0.5,
    "coursemart status": 0.8,
    "coursemart load (nothing to do)": 0.8,
}


def median_run(name: str, command: list[str], runs: int) -> Measurement:
    """The run of median time among ``runs`` runs of ``command``."""
    measured = sorted((run_command(name, command)[0] for _ in range(runs)), key=lambda m: m.seconds)
    return measured[len(measured) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser)
    args = parser.parse_args()
    record = Results("startup", args)
    runs = 3 if args.quick else 5
    with tempfile.TemporaryDirectory(prefix="coursemart-startup-") as scratch:
        lake, url = f"{scratch}/lake", f"sqlite:///{scratch}/warehouse.db"
        run_command(
            "prepare",
            coursemart_command("run", "-q", "-n", "10000", "--lake", lake, "--warehouse", url),
        )
        where = ["--lake", lake, "--warehouse", url]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import click"': [sys.executable, "-c", "import click"],
            "coursemart --help": coursemart_command("--help"),
            "coursemart config": coursemart_command("config"),
            "coursemart status": coursemart_command("status", *where),
            "coursemart load (nothing to do)": coursemart_command("load", "-q", *where),
        }
        measured = {name: median_run(name, command, runs) for name, command in commands.items()}
    rows = [["command", "median s", "peak MiB", "goal", "load avg"]]
    verdicts = []
    for name, m in measured.items():
        goal = GOALS.get(name)
        rows.append(
            [
                name,
                f"{m.seconds:.3f}",
                f"{m.peak_mib:.0f}",
                f"<= {goal} s" if goal else "anchor",
                f"{m.load:.1f}",
            ]
        )
        if goal is not None:
            verdict = "met" if m.seconds <= goal else "MISSED"
            verdicts.append(f"{name} <= {goal} s: {m.seconds:.2f} s ({verdict})")
    print(table(rows))
    print("targets: " + "; ".join(verdicts))
    record.save(
        {
            "runs": runs,
            "results": [
                {"command": name, "goal": GOALS.get(name), **vars(m)}
                for name, m in measured.items()
            ],
            "checks": verdicts,
        }
    )


if __name__ == "__main__":
    main()
