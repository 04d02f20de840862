"""User-facing models: AnnData in, results in AnnData out."""

from ._base import ScvaeModel
from ._checks import GeneMismatchError
from ._cluster_selection import SEPARABILITY_THRESHOLD, ClusterSelection
from ._gmvae import GMVAE
from ._saved import SavedModelError
from ._schedule import GMVAESchedule
from ._setup import setup_anndata
from ._vae import VAE

__all__ = [
    "GMVAE",
    "SEPARABILITY_THRESHOLD",
    "VAE",
    "ClusterSelection",
    "GMVAESchedule",
    "GeneMismatchError",
    "SavedModelError",
    "ScvaeModel",
    "setup_anndata",
]
