"""A drop-in replacement of scvi-tools' ``AnnDataLoader`` serving tensors converted once."""

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scvi.data import AnnDataManager
from scvi.dataloaders import AnnDataLoader, BatchDistributedSampler
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from scvae._arguments import integer_at_least

from ._dataset import RegisteredTensors


class TensorDataLoader(DataLoader):
    """Drop-in replacement of scvi-tools' ``AnnDataLoader`` serving :class:`RegisteredTensors`.

    Accepts the same arguments (those it has no use for are ignored), so scvi-tools' model
    methods and data splitter use it as is.

    Parameters
    ----------
    adata_manager
        Manager of the registered AnnData.
    indices
        Cells to serve (integers or a boolean mask); all by default.
    batch_size
        Cells per minibatch.
    shuffle
        Shuffle the cells every epoch.
    drop_last
        Drop the last incomplete minibatch.
    distributed_sampler
        Shard the cells across DDP processes.
    device
        Where to keep the converted tensors (``"cpu"`` unless the data splitter chose a GPU).
    pin_memory
        Serve minibatches in page-locked memory, so that copies to a GPU run asynchronously
        (ignored without CUDA).
    load_sparse_tensor
        Serve the counts as torch sparse CSR tensors. scvae's modules read them as they are
        (their likelihoods densify them where they need to); a module that indexes the counts
        densely needs ``False``.
    block_size, blocks_per_buffer
        Backed data only: how :class:`BlockShuffleSampler` reads the file (not used with
        ``distributed_sampler``, where each minibatch is read row by row).
    **kwargs
        Other options of scvi-tools' ``AnnDataLoader`` and torch's ``DataLoader``
        (:data:`UNUSED_LOADER_OPTIONS`: ``num_workers``, ``data_and_attributes``, ...) are
        accepted and ignored: the tensors are converted once and sliced in this process.
        Any other name is refused (a misspelt option would otherwise change nothing).
    """

    def __init__(
        self,
        adata_manager: AnnDataManager,
        *,
        indices: Sequence[int] | np.ndarray | None = None,
        batch_size: int = 128,
        shuffle: bool = False,
        drop_last: bool = False,
        distributed_sampler: bool = False,
        device: torch.device | str = "cpu",
        pin_memory: bool = False,
        load_sparse_tensor: bool = False,
        block_size: int = 1024,
        blocks_per_buffer: int = 16,
        **kwargs: Any,
    ):
        _check_unused_options(kwargs)
        if batch_size is not None and not integer_at_least(batch_size, 1):
            raise ValueError(
                f"batch_size is the number of cells per minibatch, a positive integer; got "
                f"{batch_size!r}."
            )
        if indices is None:
            indices = np.arange(adata_manager.adata.n_obs)
        indices = np.asarray(indices)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        dataset = RegisteredTensors(
            adata_manager, indices, device=device, sparse=load_sparse_tensor
        )
        batch_size = batch_size or 128
        if distributed_sampler:
            sampler = BatchDistributedSampler(
                dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last
            )
        elif dataset.counts.backed:
            sampler = dataset.minibatches(
                batch_size,
                shuffle=shuffle,
                drop_last=drop_last,
                block_size=block_size,
                blocks_per_buffer=blocks_per_buffer,
            )
        else:
            order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
            sampler = BatchSampler(order, batch_size=batch_size, drop_last=drop_last)
        pin_memory = (
            pin_memory and torch.cuda.is_available() and dataset.counts.device.type == "cpu"
        )
        super().__init__(dataset, sampler=sampler, batch_size=None, pin_memory=pin_memory)


def _parameter_names(function) -> set[str]:
    return set(inspect.signature(function).parameters) - {"self", "args", "kwargs"}


#: Options of scvi-tools' ``AnnDataLoader`` and torch's ``DataLoader`` that
#: :class:`TensorDataLoader` takes and has no use for.
UNUSED_LOADER_OPTIONS = frozenset(
    (_parameter_names(AnnDataLoader.__init__) | _parameter_names(DataLoader.__init__))
    - _parameter_names(TensorDataLoader.__init__)
    - {"adata_manager", "dataset"}
)


#: Options of torch's ``DataLoader`` that only tune how minibatches are fetched (worker
#: processes, prefetching): :class:`TensorDataLoader` slices tensors converted once, in the
#: training process, and has no use for them.
FETCHING_OPTIONS = frozenset(
    {
        "num_workers",
        "persistent_workers",
        "prefetch_factor",
        "pin_memory_device",
        "timeout",
        "worker_init_fn",
        "multiprocessing_context",
        "in_order",
    }
)


def _check_unused_options(options: dict) -> None:
    """Refuse ``options`` (the loader's ``**kwargs``) outside :data:`UNUSED_LOADER_OPTIONS`."""
    unknown = sorted(set(options) - UNUSED_LOADER_OPTIONS)
    if unknown:
        raise TypeError(
            f"{unknown} are not options of TensorDataLoader, which takes "
            f"{sorted(_parameter_names(TensorDataLoader.__init__))} (and ignores scvi-tools' "
            "and torch's other loader options)."
        )
