"""The code passes ruff's lint rules and is ruff-formatted (configuration in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["src", "tests", "benchmarks"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [("check", "--no-cache"), ("format", "--check", "--no-cache")],
    ids=["lint", "format"],
)
def test_ruff(args):
    result = _ruff(*args)
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, f"`ruff {' '.join(args)}` failed:\n{output}"
