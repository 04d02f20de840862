"""scvae: deep generative models of raw single-cell counts, as a scvi-tools plugin."""

from importlib.metadata import PackageNotFoundError, version

from . import data, datasets, distributions, model, module, pl, tl
from .data import setup_anndata
from .model import GMVAE, VAE

try:
    __version__ = version("scvae-torch")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "unknown"

__all__ = [
    "GMVAE",
    "VAE",
    "data",
    "datasets",
    "distributions",
    "model",
    "module",
    "pl",
    "setup_anndata",
    "tl",
]
