"""Sphinx configuration of the scvae documentation.

Build locally (no internet needed) with::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import warnings
from datetime import date
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).parent

# sphinx-autodoc-typehints calls a Sphinx API deprecated for Sphinx 10: a Python warning per
# docstring on stderr, not a Sphinx warning (it does not fail -W builds). Keep the log readable.
warnings.filterwarnings(
    "ignore",
    message=r".*sphinx_autodoc_typehints.*is deprecated",
    module="sphinx_autodoc_typehints",
)

# -- Project -----------------------------------------------------------------------------------

project = "scvae"
author = "scvae developers"
copyright = f"{date.today():%Y}, {author}"
release = _version("scvae-torch")
version = release

# -- General -----------------------------------------------------------------------------------

extensions = [
    "myst_nb",  # MyST markdown (.md) and notebooks (.ipynb)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_autodoc_typehints",  # after napoleon
    "scanpydoc.definition_list_typed_field",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
# .rst first: autosummary writes its stubs (docs/generated) with the first suffix.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
default_role = "literal"
pygments_style = "default"

# Unresolved cross-references (torch, scvi-tools, anndata, ... when intersphinx is off) must
# not turn into warnings: the build machine has no internet and the build runs with -W.
nitpicky = False

# -- MyST / myst-nb ----------------------------------------------------------------------------

myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # notebooks are rendered with the outputs they were saved with

# -- autodoc / autosummary / napoleon ----------------------------------------------------------

autosummary_generate = True  # stubs go into docs/generated (git-ignored)
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
# Inherited members documented on the model pages (scvae.VAE, scvae.GMVAE, ScvaeModel): those
# of scvae's base class and the scvi-tools methods the user guide relies on. Elsewhere (torch
# modules, distributions, callbacks) only a class's own members are documented.
autosummary_context = {
    "model_inherited": [
        "setup_anndata",
        "train",
        "annotate",
        "get_elbo",
        "get_marginal_ll",
        "get_reconstruction_error",
        "get_normalized_expression",
        "posterior_predictive_sample",
        "get_latent_representation",
        "save",
        "load",
        "history",
        "view_anndata_setup",
    ],
}

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
napoleon_use_rtype = True
napoleon_use_param = True
napoleon_custom_sections = [("Params", "Parameters")]

typehints_defaults = "braces"
always_document_param_types = False

# -- intersphinx -------------------------------------------------------------------------------
# Only on Read the Docs: elsewhere (CI, offline machines) fetching inventories would fail or hang,
# and the references simply stay unlinked (see ``nitpicky`` above).

if os.environ.get("READTHEDOCS"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "scvi-tools": ("https://docs.scvi-tools.org/en/stable/", None),
        "lightning": ("https://lightning.ai/docs/pytorch/stable/", None),
        "pandas": ("https://pandas.pydata.org/docs/", None),
    }
else:
    intersphinx_mapping = {}
intersphinx_timeout = 10

# -- HTML --------------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = "scvae"
html_theme_options = {
    "use_download_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}

# -- Benchmarks --------------------------------------------------------------------------------
# docs/benchmarks/ is written by the benchmark scripts and may be empty. A toctree glob that
# matches nothing is a warning (fatal under -W) that cannot be suppressed, so the toctree of
# benchmarks.md is put in only when there is something to list.

BENCHMARKS_MARKER = "<!-- benchmark-pages -->"
BENCHMARK_SUFFIXES = (".md", ".ipynb")


def _benchmark_pages() -> list[Path]:
    return sorted(p for p in (HERE / "benchmarks").glob("*") if p.suffix in BENCHMARK_SUFFIXES)


def _insert_benchmark_pages(app, docname: str, source: list[str]) -> None:
    if docname != "benchmarks" or BENCHMARKS_MARKER not in source[0]:
        return
    if _benchmark_pages():
        block = "```{toctree}\n:glob:\n:maxdepth: 1\n\nbenchmarks/*\n```\n"
    else:
        block = "```{note}\nNo benchmark results have been written yet.\n```\n"
    source[0] = source[0].replace(BENCHMARKS_MARKER, block)


def _always_reread_benchmarks(app, env, added, changed, removed) -> list[str]:
    # Benchmark pages come and go without benchmarks.md changing; re-read it every time.
    return ["benchmarks"] if "benchmarks" in env.found_docs else []


def setup(app) -> None:
    app.connect("source-read", _insert_benchmark_pages)
    app.connect("env-get-outdated", _always_reread_benchmarks)
