"""Random draws that are reproducible without reseeding the user's session."""

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def seeded(seed: int | None, device: torch.device | None = None) -> Iterator[None]:
    """Run the block from random seed ``seed`` (Python, NumPy, PyTorch on the CPU and on
    ``device``, where a model computes), and give the caller's random states back
    afterwards; ``None`` leaves them alone. Other devices' generators are not touched."""
    if seed is None:
        yield
        return
    seed = int(seed)  # Python's random takes no NumPy integer
    with random_state_kept(device) as cuda:
        # The global states, as scvi-tools' seed sets them, for any library code that reads them.
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        if device is not None and device.type == "mps":
            torch.mps.manual_seed(seed)
        yield


@contextmanager
def random_state_kept(device: torch.device | None = None) -> Iterator[list[int]]:
    """Run the block, then give the caller's random states (Python, NumPy, PyTorch on the
    CPU and on ``device``) back, so that its draws leave no trace: a query whose result does
    not depend on them does not move the session's later draws. Yields the CUDA devices
    whose generators are restored."""
    kind = None if device is None else device.type
    cuda = []  # the CUDA device whose generator is restored, if any
    if kind == "cuda":
        cuda = [torch.cuda.current_device() if device.index is None else device.index]
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    mps_state = torch.mps.get_rng_state() if kind == "mps" else None
    try:
        with torch.random.fork_rng(devices=cuda, device_type="cuda"):
            yield cuda
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
        if mps_state is not None:
            torch.mps.set_rng_state(mps_state)
