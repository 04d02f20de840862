"""scvi-tools' data splitter serving scvae's loaders, with tensors on the GPU when they fit."""

import inspect
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scvi import REGISTRY_KEYS, settings
from scvi.data import AnnDataManager
from scvi.dataloaders import DataSplitter
from torch.utils.data import DataLoader

from ._loader import FETCHING_OPTIONS, TensorDataLoader

#: Counts with at most this share of non-zero entries are served as sparse CSR minibatches,
#: for which the encoders' sparse input layer beats a dense matrix product (see
#: ``docs/scaling.md``).
SPARSE_DENSITY_LIMIT = 0.3
#: What scvi-tools' warning of a last training minibatch of one cell says.
ONE_CELL_MINIBATCH = "Last batch will have a small size of 1 samples"
#: The data splitter's arguments that scvi-tools' ``train()`` sets from its own.
TRAIN_SPLITTER_ARGUMENTS = frozenset(
    {
        "train_size",
        "validation_size",
        "batch_size",
        "shuffle_set_split",
        "load_sparse_tensor",
    }
)
#: The loader's arguments that the data splitter sets for each loader it makes.
SPLITTER_LOADER_ARGUMENTS = frozenset({"indices", "shuffle", "device"})
#: Share of free GPU memory the counts may take to be kept on the device.
DEVICE_MEMORY_SHARE = 0.5


class TensorDataSplitter(DataSplitter):
    """scvi-tools' :class:`~scvi.dataloaders.DataSplitter` serving :class:`TensorDataLoader`.

    Splits cells exactly like scvi-tools, and leaves out of each epoch a last training
    minibatch of one cell (which scvi-tools does only for the default ``train_size``, and
    otherwise warns of), without scvi-tools' warning of it. When
    training on a GPU and the counts take less than half of its free memory, the tensors are
    put on the GPU once and minibatches are sliced there; otherwise minibatches are served in
    pinned memory for asynchronous copies.

    Parameters
    ----------
    adata_manager
        Manager of the registered AnnData.
    *args, **kwargs
        As for :class:`~scvi.dataloaders.DataSplitter` (``train_size``, ``validation_size``,
        ...); the keywords it does not take (``batch_size``, ...) go to each
        :class:`TensorDataLoader`.
    load_sparse_tensor
        An argument of the models' ``train``: sparse CSR or dense training and validation
        minibatches; by default (``None``) they are sparse when the counts are (at most
        :data:`SPARSE_DENSITY_LIMIT` of the entries non-zero, or read from a backed file).
    """

    data_loader_cls = TensorDataLoader

    def __init__(
        self,
        adata_manager: AnnDataManager,
        *args: Any,
        load_sparse_tensor: bool | None = None,
        **kwargs: Any,
    ):
        sparse = bool(load_sparse_tensor)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            super().__init__(adata_manager, *args, load_sparse_tensor=sparse, **kwargs)
        batch_size = self.data_loader_kwargs.get("batch_size") or settings.batch_size
        if not self.drop_last and self.n_train > batch_size and self.n_train % batch_size == 1:
            # A minibatch of one cell cannot be batch-normalised: leave it out (another cell
            # each epoch, as the training cells are shuffled).
            self.drop_last = True
        for warning in caught:  # scvi-tools' warning of that minibatch no longer applies
            if not (self.drop_last and ONE_CELL_MINIBATCH in str(warning.message)):
                # scvi-tools' own warning, from its train() (where its filters match)
                warnings.warn(warning.message, warning.category, stacklevel=2)
        if load_sparse_tensor is None:
            self.load_sparse_tensor = counts_are_sparse(adata_manager)

    def setup(self, stage: str | None = None) -> None:
        """Split the cells and choose where the tensors live.

        Parameters
        ----------
        stage
            Lightning's stage (``"fit"``, ...); the split is the same for all.
        """
        super().setup(stage)
        device = self._device()
        self.data_loader_kwargs["device"] = device
        on_gpu_from_host = self._trainer_device().type == "cuda" and device.type == "cpu"
        self.pin_memory = self.pin_memory or on_gpu_from_host

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """The minibatch as it is: scvi-tools densifies sparse counts here, scvae reads them.

        Parameters
        ----------
        batch
            The minibatch, on the training device.
        dataloader_idx
            Index of the loader it came from.
        """
        return batch

    def val_dataloader(self) -> DataLoader | list:
        """Validation minibatches; an empty list (not ``None``) when there is no validation set.

        Lightning refuses ``None`` when validation runs every epoch, which scvae asks for so
        that the history holds the validation ELBO.
        """
        return super().val_dataloader() or []

    def _trainer_device(self) -> torch.device:
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _device(self) -> torch.device:
        device = self._trainer_device()
        if device.type != "cuda" or self.adata_manager.adata.isbacked:
            return torch.device("cpu")
        counts = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        n_bytes = 12 * counts.nnz if sp.issparse(counts) else 4 * np.prod(counts.shape)
        free, _ = torch.cuda.mem_get_info(device)
        return device if n_bytes < DEVICE_MEMORY_SHARE * free else torch.device("cpu")


def counts_are_sparse(adata_manager: AnnDataManager) -> bool:
    """Whether the counts registered in ``adata_manager`` are sparse enough to be served as
    sparse CSR minibatches.

    Backed counts always are: they are read from the file as CSR rows.
    """
    if adata_manager.adata.isbacked:
        return True
    counts = adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
    n_entries = counts.shape[0] * counts.shape[1]
    n_nonzero = counts.nnz if sp.issparse(counts) else np.count_nonzero(counts)
    return n_entries > 0 and n_nonzero <= SPARSE_DENSITY_LIMIT * n_entries


def check_splitter_options(options: dict | None) -> None:
    """Refuse ``datasplitter_kwargs`` (``options``) that the data splitter and its loader do
    not take from there, before training starts: scvi-tools' splitter hands the names it
    does not know to the loader, where a misspelt option, or one of torch's that changes
    what is sampled (``sampler``, ``collate_fn``, ...), would otherwise change nothing.
    Options that only tune fetching (:data:`FETCHING_OPTIONS`, e.g. ``num_workers``) are
    accepted and have no effect."""
    options = set(options or {})
    for refused, why in [
        (TRAIN_SPLITTER_ARGUMENTS, "arguments of train() itself: give them there"),
        (SPLITTER_LOADER_ARGUMENTS, "set by the data splitter for each of its loaders"),
        ({"distributed_sampler"}, "set from the trainer's strategy (e.g. strategy='ddp')"),
    ]:
        if given := sorted(options & refused):
            raise TypeError(f"datasplitter_kwargs {given} are {why}, not in datasplitter_kwargs.")
    splitter = set(inspect.signature(DataSplitter.__init__).parameters)
    taken = (splitter - TRAIN_SPLITTER_ARGUMENTS - {"self", "adata_manager", "kwargs"}) | {
        "drop_last",
        "block_size",
        "blocks_per_buffer",
    }
    if unknown := sorted(options - taken - FETCHING_OPTIONS):
        raise TypeError(
            f"datasplitter_kwargs {unknown} are options of neither the data splitter nor "
            f"its loader: they take {sorted(taken)} (and ignore those that only tune "
            "fetching, such as num_workers: the counts are sliced in memory)."
        )
