"""Checking, registering and serving AnnData count matrices.

Names imported ``as`` themselves and not in ``__all__`` serve scvae's other packages.
"""

from ._count_rows import CountRows
from ._dataset import RegisteredTensors
from ._fields import CountLayerField, registered_layer
from ._loader import TensorDataLoader
from ._obs_fields import BatchField, LabelsField, count_fields
from ._registration import (
    check_own_registration,
    registering,
    strip_registration,
)
from ._registration import registration_of as registration_of
from ._registration import without_scvi_setup_warnings as without_scvi_setup_warnings
from ._samplers import BlockShuffleSampler
from ._splitter import TensorDataSplitter, counts_are_sparse
from ._splitter import check_splitter_options as check_splitter_options
from ._validation import (
    InvalidCountsError,
    check_obs_complete,
    check_obs_key,
    check_obs_sortable,
    check_setup,
    count_matrix,
    validate_counts,
    warn_small_batches,
)
from ._validation import row_totals as row_totals

__all__ = [
    "BatchField",
    "BlockShuffleSampler",
    "CountLayerField",
    "CountRows",
    "InvalidCountsError",
    "LabelsField",
    "RegisteredTensors",
    "TensorDataLoader",
    "TensorDataSplitter",
    "check_obs_complete",
    "check_obs_key",
    "check_obs_sortable",
    "check_own_registration",
    "check_setup",
    "count_fields",
    "count_matrix",
    "counts_are_sparse",
    "registered_layer",
    "registering",
    "strip_registration",
    "validate_counts",
    "warn_small_batches",
]
