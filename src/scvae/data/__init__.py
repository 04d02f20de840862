"""Checking, registering and serving AnnData count matrices."""

from ._count_rows import CountRows
from ._dataset import RegisteredTensors
from ._fields import CountLayerField, registered_layer
from ._loader import TensorDataLoader
from ._obs_fields import BatchField, LabelsField
from ._registration import (
    check_own_registration,
    registering,
    registration_of,
    strip_registration,
    without_scvi_setup_warnings,
)
from ._samplers import BlockShuffleSampler
from ._splitter import TensorDataSplitter, counts_are_sparse
from ._validation import (
    InvalidCountsError,
    check_obs_complete,
    check_obs_key,
    check_obs_sortable,
    count_matrix,
    validate_counts,
    warn_small_batches,
)

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
    "count_matrix",
    "counts_are_sparse",
    "registered_layer",
    "registering",
    "registration_of",
    "strip_registration",
    "validate_counts",
    "warn_small_batches",
    "without_scvi_setup_warnings",
]
