"""Generate benchmark: coursemart's generator against the original notebook's approach.

The original built a per-row Python list of tuples (names and dates made one row at a time),
turned it into a pandas frame and wrote Parquet. Both write the same number of courses to a
fresh folder; each runs in its own process so its peak memory (max RSS) is its own. Times
exclude interpreter start and imports.

    python bench/generate.py [--sizes 1000000,10000000] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import Measurement, Results, add_run_options, run_case, table  # noqa: E402

COURSEMART = """
from coursemart.generate import generate
BENCH_START
generate({lake!r}, courses={n}, seed=1)
"""

ORIGINAL = """
import random
from datetime import datetime, timedelta
import pandas as pd
BENCH_START

categories = {{1: "Technology", 2: "Business", 3: "Art", 4: "Science", 5: "Health"}}
topics = ["Machine Learning", "Watercolor", "Accounting", "Genetics", "Nutrition"]
now = datetime.now()
rows = []
for course_id in range(1, {n} + 1):
    category_id = random.randint(1, 5)
    level_id = random.choice([101, 102, 103])
    name = f"{{random.choice(topics)}} {{categories[category_id]}} Course {{course_id}}"
    start_date = now + timedelta(days=random.randint(-365, 180))
    rows.append((course_id, name, category_id, level_id, start_date))
columns = ["course_id", "course_name", "category_id", "level_id", "start_date"]
frame = pd.DataFrame(rows, columns=columns)
frame.to_parquet({out!r}, index=False)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated course counts (default 10^6,10^7)")
    add_run_options(parser)
    args = parser.parse_args()
    default = "100000,500000" if args.quick else "1000000,10000000"
    sizes = [int(size) for size in (args.sizes or default).split(",")]
    record = Results("generate", args)
    results: dict[tuple[str, int], Measurement] = {}
    with tempfile.TemporaryDirectory(prefix="coursemart-bench-") as scratch:
        for n in sizes:
            lake = str(Path(scratch) / f"lake-{n}")
            out = str(Path(scratch) / f"original-{n}.parquet")
            print(f"generating {n:,} courses ...", flush=True)
            results["coursemart", n] = run_case("coursemart", COURSEMART.format(lake=lake, n=n))
            results["original", n] = run_case("original", ORIGINAL.format(out=out, n=n))
    rows = [["size", "engine", "seconds", "rows/s", "peak MiB", "speed vs original"]]
    for n in sizes:
        ours, theirs = results["coursemart", n], results["original", n]
        for m in (ours, theirs):
            ratio = theirs.seconds / m.seconds
            rows.append(
                [
                    f"{n:,}",
                    m.name,
                    f"{m.seconds:.2f}",
                    f"{n / m.seconds:,.0f}",
                    f"{m.peak_mib:,.0f}",
                    f"{ratio:.1f}x",
                ]
            )
    print(table(rows))
    verdicts = []
    for n in sizes:
        speed = results["original", n].seconds / results["coursemart", n].seconds
        verdicts.append(f">=10x original rows/s at {n:,}: {speed:.1f}x ({_verdict(speed >= 10)})")
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        for name in ("coursemart", "original"):
            growth = results[name, large].peak_mib / results[name, small].peak_mib
            print(f"{name}: peak memory at {large:,} is {growth:.2f}x that at {small:,}")
        growth = results["coursemart", large].peak_mib / results["coursemart", small].peak_mib
        verdicts.append(
            f"peak memory {large:,} vs {small:,} <=1.5x: {growth:.2f}x ({_verdict(growth <= 1.5)})"
        )
    print("targets: " + "; ".join(verdicts))
    record.save(
        {
            "sizes": sizes,
            "results": [
                {"engine": name, "courses": n, **asdict(m)} for (name, n), m in results.items()
            ],
            "checks": verdicts,
        }
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
