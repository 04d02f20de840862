"""scvae: deep generative models of raw single-cell counts, as a scvi-tools plugin.

The subpackages and the models are imported on first use, so that ``import scvae`` (and the
``scvae`` command's ``--help``) does not load torch and scvi-tools; ``scvae --version`` loads
torch to say whether it sees a GPU.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scvae-torch")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "unknown"

#: Subpackages, imported when first accessed.
SUBPACKAGES = ("data", "datasets", "distributions", "model", "module", "pl", "tl", "train")
#: Names exported from :mod:`scvae.model`.
MODEL_NAMES = ("GMVAE", "VAE", "setup_anndata")

__all__ = [*MODEL_NAMES, *SUBPACKAGES]


def __getattr__(name: str):
    if name in SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in MODEL_NAMES:
        return getattr(importlib.import_module(f"{__name__}.model"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
