"""Every command starts instantly: heavy libraries are imported only by the commands that use
them (the start-up times themselves are measured by bench/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coursemart.generate import generate
from coursemart.load import load
from tests.conftest import WINDOW

HEAVY = ("pyarrow", "pandas", "sqlalchemy", "pydantic_settings", "fastapi", "uvicorn", "numpy")


def imported_by(*args: str) -> set[str]:
    """The top-level modules a fresh interpreter has imported after ``coursemart ARGS``."""
    probe = (
        "import json, sys\n"
        "from coursemart.cli import main\n"
        f"code = main({list(args)!r})\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [("--help",), ("load", "--help"), ("serve", "--help")])
def test_help_imports_no_heavy_library(args: tuple[str, ...]) -> None:
    assert not imported_by(*args) & set(HEAVY)


def test_config_reads_settings_without_data_libraries() -> None:
    assert not imported_by("config") & {"pyarrow", "pandas", "sqlalchemy", "fastapi", "numpy"}


def test_a_load_with_nothing_to_do_and_status_leave_pandas_and_the_api_alone(
    lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    load(str(lake_dir), sqlite_url)
    where = ("--lake", str(lake_dir), "--warehouse", sqlite_url)

    for command in (("load", "-q", *where), ("status", *where)):
        assert not imported_by(*command) & {"pandas", "pyarrow.dataset", "fastapi", "uvicorn"}
