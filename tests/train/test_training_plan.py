"""The training plan logs one value per epoch under scvi-tools' names, with the right values."""

import numpy as np
import torch
from lightning.pytorch import Callback

import scvae
from tests.helpers import QUIET


class StepLosses(Callback):
    """Records every training step's loss and minibatch size."""

    def __init__(self):
        self.losses, self.sizes = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))
        self.sizes.append(len(batch["X"]))


def column(model, key: str) -> np.ndarray:
    return model.history[key].to_numpy(dtype=float).ravel()


def test_epoch_metrics_are_cell_weighted_means_of_the_steps(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    steps = StepLosses()
    torch.manual_seed(0)
    model.train(max_epochs=3, batch_size=64, callbacks=[steps], **QUIET)
    per_epoch = len(steps.losses) // 3
    expected = [
        np.average(steps.losses[i : i + per_epoch], weights=steps.sizes[i : i + per_epoch])
        for i in range(0, len(steps.losses), per_epoch)
    ]
    np.testing.assert_allclose(column(model, "train_loss_epoch"), expected, rtol=1e-5)
    for key in ("elbo_train", "reconstruction_loss_train", "kl_local_train", "kl_weight"):
        assert len(column(model, key)) == 3, key
    # The ELBO's terms add up (no global KL here), with the sign of get_elbo.
    np.testing.assert_allclose(
        column(model, "elbo_train"),
        -(column(model, "reconstruction_loss_train") + column(model, "kl_local_train")),
        rtol=1e-5,
    )
    # The GMVAE's two KL terms make up its local KL.
    np.testing.assert_allclose(
        column(model, "kl_z_train") + column(model, "kl_y_train"),
        column(model, "kl_local_train"),
        rtol=1e-4,
    )
    np.testing.assert_allclose(column(model, "kl_weight"), [0.0, 1.0, 1.0])


def test_the_history_and_get_elbo_share_one_sign(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_latent=3, n_hidden=16, dropout_rate=0.0)
    model.train(max_epochs=5, **QUIET)
    validation = column(model, "elbo_validation")[-1]
    torch.manual_seed(0)
    elbo = model.get_elbo(indices=model.validation_indices)
    assert validation < 0 and elbo < 0
    np.testing.assert_allclose(validation, elbo, rtol=0.02)


def test_optimizer_is_scvi_tools_adam_with_the_fused_kernel(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_latent=3, n_hidden=16)
    model.train(max_epochs=1, plan_kwargs={"lr": 2e-3, "weight_decay": 1e-6}, **QUIET)
    (optimizer,) = model.trainer.optimizers
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["fused"]
    assert optimizer.defaults["lr"] == 2e-3
    assert optimizer.defaults["weight_decay"] == 1e-6
    n_parameters = sum(len(group["params"]) for group in optimizer.param_groups)
    assert n_parameters == len([p for p in model.module.parameters() if p.requires_grad])
