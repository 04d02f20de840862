"""Small helpers shared by the tests."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from lightning.pytorch import Callback

#: Trainer options for tests: no progress bar, history kept in memory by scvi-tools.
QUIET = {"enable_progress_bar": False}

#: Marks a test that needs a CUDA GPU (skipped on CPU-only machines such as CI).
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

#: Options of ``scvae train`` for tests: two epochs, no progress bar, 4 latent dimensions.
FAST = ["--max-epochs", "2", "--no-progress-bar", "--n-latent", "4"]


def mostly_zeros(adata):
    """``adata`` with about 85% of its counts set to zero, as CSR (the synthetic counts have
    few zeros, so training would take the dense path); every cell keeps its first two genes,
    so none is empty."""
    keep = np.random.default_rng(0).random(adata.shape) < 0.1
    keep[:, :2] = True
    adata.X = sp.csr_matrix(adata.X.toarray() * keep, dtype=np.float32)
    return adata


class KLWeights(Callback):
    """Records the training plan's KL weight at the start of every epoch."""

    def __init__(self):
        self.weights = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.weights.append(float(pl_module.kl_weight))
