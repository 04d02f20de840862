"""The Sphinx documentation builds without a single warning (as Read the Docs builds it), and
its API reference lists every public object."""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD_TIMEOUT_S = 300

PUBLIC_PACKAGES = ("data", "datasets", "distributions", "model", "module", "pl", "tl", "train")


def test_api_reference_lists_every_public_object():
    text = (DOCS / "api.md").read_text()
    listed = set(re.findall(r"^   ([\w.]+)\s*$", text, re.M))
    listed |= {name.removeprefix("scvae.") for name in re.findall(r"\.\. data:: ([\w.]+)", text)}
    top_level = importlib.import_module("scvae")
    missing = []
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(f"scvae.{package}")
        for name in module.__all__:
            documented_at_top = getattr(top_level, name, None) is getattr(module, name)
            if f"{package}.{name}" not in listed and not (documented_at_top and name in listed):
                missing.append(f"{package}.{name}")
    assert not missing, f"docs/api.md does not list {missing}"


@pytest.mark.slow  # a full Sphinx build
def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    env = {k: v for k, v in os.environ.items() if k != "READTHEDOCS"}  # no intersphinx fetches
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
        str(DOCS),
        str(out),
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    log = f"stdout:\n{result.stdout[-20_000:]}\nstderr:\n{result.stderr[-20_000:]}"
    assert result.returncode == 0, f"sphinx -W failed (exit {result.returncode}):\n{log}"
    assert (out / "index.html").is_file(), log
    assert (out / "generated" / "scvae.GMVAE.html").is_file(), log


@pytest.mark.slow  # trains a VAE and several GMVAEs on paul15 (about a minute and a half)
def test_the_tutorial_runs_with_the_current_code(tmp_path):
    """Every code cell of the tutorial runs. The documentation renders the outputs it was
    saved with, so a renamed attribute or option in its code would otherwise go unnoticed."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(DOCS / "tutorial.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=BUILD_TIMEOUT_S, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell that failed
    printed = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in printed if output.get("output_type") == "error"]
