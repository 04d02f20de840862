"""Elementwise kernels fused by ``torch.compile``, with the eager function as the fallback."""

import functools
import warnings
from collections.abc import Callable

import torch
from torch import Tensor


class FusedKernel:
    """An elementwise function run as one compiled loop instead of dozens of torch operations.

    Series such as those of :mod:`~scvae.distributions._gamma_ratio` take about fifty small
    operations each; evaluated eagerly on the non-zero counts of a minibatch, every one of them
    pays torch's per-operation cost (a kernel launch on a GPU). ``torch.compile`` fuses them
    into a single kernel, with the number of elements symbolic (``dynamic=True``), so minibatches
    with different numbers of non-zero counts share one compiled kernel.

    Compiling takes a few seconds, once per process, data type and device (inductor caches the
    result on disk). Where compiling fails (no C++ compiler, an unsupported platform), a warning
    says so once and the eager function is used from then on: the results are the same to float
    rounding, only slower. Setting the environment variable ``TORCHDYNAMO_DISABLE=1`` (torch's
    own switch) runs every kernel eagerly.

    Parameters
    ----------
    function
        Pure elementwise function of tensors; it is also the fallback.
    """

    def __init__(self, function: Callable[..., Tensor]):
        functools.update_wrapper(self, function)
        self.function = function
        self.compiled = torch.compile(function, dynamic=True)
        self.failed = False

    def __call__(self, *tensors: Tensor) -> Tensor:
        if self.failed:
            return self.function(*tensors)
        try:
            return self.compiled(*tensors)
        except Exception as error:  # any failure to compile falls back
            # Invalid arguments fail the eager function too, and that error is raised here;
            # only when the eager function succeeds was the failure the compiler's.
            result = self.function(*tensors)
            self.failed = True
            warnings.warn(
                f"scvae could not compile {self.function.__name__} with torch.compile "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                "it runs eagerly from now on, with the same results but slower. Install a C++ "
                "compiler to get the fused kernel, or set TORCHDYNAMO_DISABLE=1 to silence this.",
                RuntimeWarning,
                stacklevel=2,
            )
            return result
