"""User-facing models: AnnData in, results in AnnData out."""

from ._base import ScvaeModel
from ._checks import GeneMismatchError
from ._gmvae import GMVAE
from ._saved import SavedModelError
from ._setup import setup_anndata
from ._vae import VAE

__all__ = ["GMVAE", "VAE", "GeneMismatchError", "SavedModelError", "ScvaeModel", "setup_anndata"]
