"""User-facing models: AnnData in, results in AnnData out."""

from ._base import GeneMismatchError, SavedModelError, ScvaeModel
from ._gmvae import GMVAE
from ._vae import VAE

__all__ = ["GMVAE", "VAE", "GeneMismatchError", "SavedModelError", "ScvaeModel"]
