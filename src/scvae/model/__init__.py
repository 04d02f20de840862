"""User-facing models: AnnData in, results in AnnData out.

Names imported ``as`` themselves and not in ``__all__`` serve scvae's other packages.
"""

from ._base import ScvaeModel
from ._cluster_selection import SEPARABILITY_THRESHOLD, ClusterSelection
from ._gmvae import GMVAE
from ._gmvae_training import checked_schedule as checked_schedule
from ._option_checks import check_cells_fill_clusters as check_cells_fill_clusters
from ._option_checks import check_n_clusters as check_n_clusters
from ._query_checks import GeneMismatchError
from ._saved import SavedModelError
from ._saved import read_saved_model as read_saved_model
from ._schedule import GMVAESchedule
from ._setup import setup_anndata
from ._training_checks import check_max_epochs as check_max_epochs
from ._training_checks import check_training_options as check_training_options
from ._training_checks import training_cells as training_cells
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
