"""The package keeps its shape: small files, public scvi-tools APIs only, layers that point down."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "scvae"
SOURCES = sorted(PACKAGE.rglob("*.py"))
#: A file a newcomer can hold in their head.
MAX_LINES = 400
#: Lower layers (pure maths, data, training helpers) and what they must not import.
LOWER_LAYERS = ("data", "distributions", "module", "train")
UPPER_LAYERS = ("scvae.model", "scvae.tl", "scvae.pl", "scvae.cli")


def package_of(path: Path) -> str:
    """The dotted package a source file belongs to (``scvae.module`` for its files)."""
    return ".".join(path.relative_to(PACKAGE.parent).parts[:-1])


def imported_modules(source: str, package: str) -> set[str]:
    """Absolute names of the modules ``source`` (a file of ``package``) imports, relative
    imports resolved."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module)
    return names


def test_sources_are_found():
    assert len(SOURCES) > 30


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_file_is_longer_than_the_limit(path):
    n_lines = len(path.read_text().splitlines())
    assert n_lines <= MAX_LINES, f"{path.name} has {n_lines} lines (at most {MAX_LINES})"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_public_scvi_tools_modules_are_imported(path):
    private = [
        name
        for name in imported_modules(path.read_text(), package_of(path))
        if name.split(".")[0] == "scvi" and any(part.startswith("_") for part in name.split("."))
    ]
    assert not private, f"{path.name} imports private scvi-tools modules {private}"


@pytest.mark.parametrize(
    "path",
    [p for p in SOURCES if p.relative_to(PACKAGE).parts[0] in LOWER_LAYERS],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_lower_layers_do_not_import_the_models_tools_plots_or_cli(path):
    upward = [
        name
        for name in imported_modules(path.read_text(), package_of(path))
        if any(name == layer or name.startswith(layer + ".") for layer in UPPER_LAYERS)
    ]
    assert not upward, f"{path.relative_to(PACKAGE)} imports {upward}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_packages_import_each_other_through_their_init(path):
    """``scvae.model`` may import ``scvae.module`` but not ``scvae.module._networks``: a
    package's private modules are its own, and its ``__init__`` is what the others see."""
    own = package_of(path).split(".")[:2]
    private = [
        name
        for name in imported_modules(path.read_text(), package_of(path))
        if name.startswith("scvae.")
        and len(name.split(".")) > 2
        and name.split(".")[2].startswith("_")
        and name.split(".")[:2] != own
    ]
    assert not private, f"{path.relative_to(PACKAGE)} imports private modules {private}"


def test_imports_are_resolved_as_python_resolves_them():
    source = "import scvi.model._utils\nfrom ..model import GMVAE\nfrom . import _vae\n"
    names = imported_modules(source, "scvae.module")
    assert names == {"scvi.model._utils", "scvae.model", "scvae.module"}
