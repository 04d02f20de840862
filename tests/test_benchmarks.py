"""The benchmark scripts whose results the docs quote can still be run: each imports (so
every name it takes from scvae still exists) and parses its documented defaults."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("*.py"))


def test_there_are_benchmark_scripts():
    assert "clustering" in SCRIPTS and "throughput" in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_script_imports(name, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # scripts import each other by name
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__doc__, f"benchmarks/{name}.py has no docstring saying what it measures"
    parse_args = getattr(module, "parse_args", None)
    if parse_args is not None and name != "scale":  # scale.py's arguments are sub-commands
        parse_args([])
