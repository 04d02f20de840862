"""Sphinx configuration of the scvae documentation.

Build locally (no internet needed) with::

    python3 -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import re
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


def _public_members_of_scvae_bases() -> list[str]:
    """Public members the model classes inherit from scvae's own bases and mixins (cluster
    queries, likelihood queries, ...), so that every scvae method has its place in the API."""
    import scvae

    names = set()
    for model in (scvae.VAE, scvae.GMVAE):
        for base in model.__mro__[1:]:
            if base.__module__.startswith("scvae."):
                names |= {name for name in vars(base) if not name.startswith("_")}
    return sorted(names)


# Inherited members documented on the model pages (scvae.VAE, scvae.GMVAE, ScvaeModel): those
# of scvae's base classes and mixins, and the scvi-tools methods the user guide relies on.
# Elsewhere (torch modules, distributions, callbacks) only a class's own members are documented.
autosummary_context = {
    "model_inherited": [
        *_public_members_of_scvae_bases(),
        "posterior_predictive_sample",
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
# docs/benchmarks/ is written by the benchmark scripts and may be empty. The results page
# (benchmarks.md) copies the headline table of each headline page that exists, with the
# command that regenerated it, and lists the other pages under an archive heading. A toctree
# glob that matches nothing is a warning (fatal under -W), so the toctrees list pages by name.

BENCHMARKS_MARKER = "<!-- benchmark-pages -->"
BENCHMARK_SUFFIXES = (".md", ".ipynb")
#: Headline results: (page, title, heading of the section whose first table is copied; None:
#: the page's first table).
HEADLINES = (
    ("elbo_vs_scvi", "Held-out ELBO: scvae's VAE against scVI", None),
    ("clustering", "Clustering, K given: the default GMVAE and baselines", "## Target: K given"),
    ("clustering", "Clustering, K from the data", "## Target: K from the data"),
    ("clustering_all_genes", "Clustering on all genes", "## Target: K given"),
    ("batch_norm", "Batch normalisation in the encoder, in both networks, or nowhere", None),
    ("reproducibility", "Reproducibility of a seeded fit", None),
    ("throughput", "Training throughput (CPU)", None),
    ("scale", "Scale: one epoch of a backed 1.3M-cell file", None),
)


def _benchmark_pages() -> list[Path]:
    return sorted(p for p in (HERE / "benchmarks").glob("*") if p.suffix in BENCHMARK_SUFFIXES)


def _first_table(text: str, heading: str | None) -> str | None:
    """The first Markdown table of ``text`` after ``heading`` (from the start if None)."""
    if heading is not None:
        if heading not in text:
            return None
        text = text[text.index(heading) :]
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if first is None:
        return None
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(table)


def _results_section(page: Path, title: str, heading: str | None) -> str | None:
    text = page.read_text()
    table = _first_table(text, heading)
    if table is None:
        return None
    command = re.search(r"Produced by `([^`]+)`", text)
    regenerate = f"Regenerated by `{command.group(1)}`; " if command else ""
    link = f"[the full page](benchmarks/{page.name})"
    return f"## {title}\n\n{regenerate}details and every run on {link}.\n\n{table}\n"


def _insert_benchmark_pages(app, docname: str, source: list[str]) -> None:
    if docname != "benchmarks" or BENCHMARKS_MARKER not in source[0]:
        return
    pages = {page.stem: page for page in _benchmark_pages()}
    sections = [
        section
        for stem, title, heading in HEADLINES
        if stem in pages and (section := _results_section(pages[stem], title, heading))
    ]
    headline = list(dict.fromkeys(stem for stem, _, _ in HEADLINES if stem in pages))
    archive = [stem for stem in pages if stem not in headline]
    blocks = sections or ["```{note}\nNo benchmark results have been written yet.\n```\n"]
    toctree = "```{{toctree}}\n:maxdepth: 1\n{options}\n{entries}\n```\n"
    if headline:
        entries = "\n".join(f"benchmarks/{stem}" for stem in headline)
        blocks.append(toctree.format(options=":hidden:\n", entries=entries))
    if archive:
        blocks.append(
            "## Archive: side studies\n\nStudies behind earlier design choices, kept as run "
            "(their numbers are those of the code of their day).\n"
        )
        entries = "\n".join(f"benchmarks/{stem}" for stem in archive)
        blocks.append(toctree.format(options="", entries=entries))
    source[0] = source[0].replace(BENCHMARKS_MARKER, "\n".join(blocks))


def _always_reread_benchmarks(app, env, added, changed, removed) -> list[str]:
    # Benchmark pages come and go without benchmarks.md changing; re-read it every time.
    return ["benchmarks"] if "benchmarks" in env.found_docs else []


def setup(app) -> None:
    app.connect("source-read", _insert_benchmark_pages)
    app.connect("env-get-outdated", _always_reread_benchmarks)
