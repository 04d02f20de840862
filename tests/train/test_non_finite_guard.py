"""A non-finite loss stops training clearly, keeps finite weights and writes nothing."""

import pytest
import torch
from lightning.pytorch import Callback

import scvae
from scvae._constants import LATENT_KEY
from scvae.module import VAEModule
from scvae.train import NonFiniteLossError
from tests.helpers import QUIET


class _Snapshots(Callback):
    """Keep the weights as they were at the start of every step."""

    def __init__(self):
        self.before_step = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before_step = {k: v.clone() for k, v in pl_module.module.state_dict().items()}


def test_nan_loss_mid_training_raises_keeps_weights_and_leaves_adata_untouched(adata, monkeypatch):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_hidden=16)
    original_loss = VAEModule.loss
    calls = {"n": 0}

    def loss_turning_nan(self, *args, **kwargs):
        output = original_loss(self, *args, **kwargs)
        calls["n"] += 1
        if self.training and calls["n"] == 5:
            output.loss = output.loss * torch.nan
        return output

    monkeypatch.setattr(VAEModule, "loss", loss_turning_nan)
    snapshots = _Snapshots()
    obsm_before, obs_before = set(adata.obsm), set(adata.obs.columns)
    with pytest.raises(NonFiniteLossError, match=r"epoch \d+, step \d+"):
        model.train(max_epochs=5, callbacks=[snapshots], **QUIET)
    for key, value in model.module.state_dict().items():
        assert torch.isfinite(value.float()).all(), key
    for key, parameter in model.module.named_parameters():  # no update from the failed step
        torch.testing.assert_close(parameter.data, snapshots.before_step[key], msg=key)
    assert LATENT_KEY not in adata.obsm
    assert set(adata.obsm) == obsm_before and set(adata.obs.columns) == obs_before
