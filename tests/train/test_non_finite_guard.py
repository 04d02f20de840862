"""A non-finite loss stops training clearly, keeps finite weights and writes nothing."""

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback

import scvae
from scvae._result_keys import LATENT_KEY
from scvae.module import VAEModule
from scvae.train import NonFiniteLossError, NonFiniteLossGuard
from tests.helpers import QUIET


class _Snapshots(Callback):
    """Keep the weights as they were at the start of every step."""

    def __init__(self):
        self.before_step = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before_step = {k: v.clone() for k, v in pl_module.module.state_dict().items()}


def make_loss_nan_at_call(monkeypatch, call: int) -> None:
    """The VAE's training loss turns NaN at its ``call``-th evaluation from now on."""
    original_loss = VAEModule.loss
    calls = {"n": 0}

    def loss_turning_nan(self, *args, **kwargs):
        output = original_loss(self, *args, **kwargs)
        calls["n"] += 1
        if self.training and calls["n"] == call:
            output.loss = output.loss * torch.nan
        return output

    monkeypatch.setattr(VAEModule, "loss", loss_turning_nan)


def test_nan_loss_mid_training_raises_keeps_weights_and_leaves_adata_untouched(
    adata, monkeypatch, capfd
):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_hidden=16)
    make_loss_nan_at_call(monkeypatch, 5)
    snapshots = _Snapshots()
    obsm_before, obs_before = set(adata.obsm), set(adata.obs.columns)
    with pytest.raises(NonFiniteLossError, match=r"epoch \d+, step \d+"):
        model.train(max_epochs=5, callbacks=[snapshots], **QUIET)
    assert capfd.readouterr().out == ""  # the error alone, not scvi-tools' print of it
    for key, value in model.module.state_dict().items():
        assert torch.isfinite(value.float()).all(), key
    # No update from the failed step (Lightning's teardown may have moved the module off a GPU).
    for key, parameter in model.module.named_parameters():
        torch.testing.assert_close(parameter.data.cpu(), snapshots.before_step[key].cpu(), msg=key)
    assert LATENT_KEY not in adata.obsm
    assert set(adata.obsm) == obsm_before and set(adata.obs.columns) == obs_before


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_one_non_finite_gradient_entry_is_refused_before_the_step(bad):
    module = VAEModule(n_input=30, n_latent=2, n_hidden=[8])
    for parameter in module.parameters():
        parameter.grad = torch.randn_like(parameter)
    trainer = type("Trainer", (), {"current_epoch": 3, "global_step": 40})()
    guard = NonFiniteLossGuard()
    guard.on_before_optimizer_step(trainer, module, optimizer=None)  # finite: passes
    module.decoder.mean_logits.weight.grad[5, 1] = bad
    with pytest.raises(NonFiniteLossError, match="epoch 3, step 40"):
        guard.on_before_optimizer_step(trainer, module, optimizer=None)


def test_nan_loss_in_a_new_fit_of_a_trained_model_keeps_its_earlier_fit(adata, monkeypatch):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_hidden=16)
    model.train(max_epochs=2, **QUIET)
    latent, summary = model.get_latent_representation(), model.summary()
    history = {key: frame.copy() for key, frame in model.history.items()}
    annotated = adata.obsm[LATENT_KEY].copy()
    make_loss_nan_at_call(monkeypatch, 5)
    with pytest.raises(NonFiniteLossError, match="before it reached the weights") as failure:
        model.train(max_epochs=3, **QUIET)
    assert "keeps its earlier fit" in "".join(failure.value.__notes__)
    assert model.is_trained_ and model.summary() == summary
    assert model.registry_ is model.adata_manager.registry  # restored, not copied
    assert model.history.keys() == history.keys()
    for key, frame in history.items():
        assert model.history[key].equals(frame), key
    np.testing.assert_array_equal(model.get_latent_representation(), latent)
    np.testing.assert_array_equal(adata.obsm[LATENT_KEY], annotated)


def test_a_failure_after_training_keeps_the_earlier_fit_and_the_adata(adata, monkeypatch):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_hidden=16)
    model.train(max_epochs=2, **QUIET)
    latent, summary = model.get_latent_representation(), model.summary()
    annotated = adata.obsm[LATENT_KEY].copy()

    def interrupted(*args, **kwargs):  # e.g. Ctrl-C while the latent means are computed
        raise KeyboardInterrupt

    monkeypatch.setattr(scvae.VAE, "get_latent_representation", interrupted)
    with pytest.raises(KeyboardInterrupt) as failure:
        model.train(max_epochs=3, **QUIET)
    monkeypatch.undo()
    assert "keeps its earlier fit" in "".join(failure.value.__notes__)
    assert model.summary() == summary
    np.testing.assert_array_equal(model.get_latent_representation(), latent)
    np.testing.assert_array_equal(adata.obsm[LATENT_KEY], annotated)
