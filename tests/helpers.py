"""Small helpers shared by the tests."""

import pytest
import torch

#: Trainer options for tests: no progress bar, history kept in memory by scvi-tools.
QUIET = {"enable_progress_bar": False}

#: Marks a test that needs a CUDA GPU (skipped on CPU-only machines such as CI).
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
