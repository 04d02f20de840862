"""Fused (compiled) elementwise kernels: eager results, a clear fallback where compiling fails."""

import warnings

import pytest
import torch

from scvae.distributions._fused import FusedKernel
from scvae.distributions._gamma_ratio import digamma_difference, log_gamma_ratio


@pytest.mark.parametrize("kernel", [log_gamma_ratio, digamma_difference])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_kernel_matches_eager_to_rounding(kernel, dtype):
    generator = torch.Generator().manual_seed(0)
    for n in (1000, 2500):  # a second size reuses the kernel (the size is symbolic)
        x = torch.randint(0, 50, (n,), generator=generator).to(dtype)
        theta = torch.exp(torch.empty(n, dtype=dtype).uniform_(-9, 18, generator=generator))
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no fallback to eager
            fused = kernel(x, theta)
        eager = kernel.function(x, theta)
        # Fusing reorders roundings; bound by the largest terms, x log(theta + x), as in
        # test_gamma_ratio's comparison with mpmath.
        magnitude = eager.abs() + x * (torch.log(theta + x).abs() + 1) + 1
        assert torch.all((fused - eager).abs() <= 16 * torch.finfo(dtype).eps * magnitude)
    assert not kernel.failed


def test_kernel_runs_compiled_under_inference_mode():
    x, theta = torch.arange(10.0), torch.full((10,), 2.5)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = log_gamma_ratio(x, theta)
    torch.testing.assert_close(result, torch.lgamma(x + 2.5) - torch.lgamma(theta))


def _square_plus(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x * x + y


def _failing_compile(*tensors: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore details")


def test_compile_failure_warns_once_and_falls_back_to_eager():
    kernel = FusedKernel(_square_plus)
    kernel.compiled = _failing_compile
    x, y = torch.arange(4.0), torch.ones(4)
    with pytest.warns(RuntimeWarning, match="could not compile _square_plus.*C\\+\\+ compiler"):
        assert torch.equal(kernel(x, y), x * x + y)
    assert kernel.failed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(kernel(x, y), x * x + y)


def test_invalid_arguments_raise_their_own_error_and_keep_the_compiled_kernel():
    kernel = FusedKernel(_square_plus)
    with pytest.raises(RuntimeError, match="size of tensor a \\(3\\) must match"):
        kernel(torch.ones(3), torch.ones(4))
    assert not kernel.failed
