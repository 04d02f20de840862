"""The VAE as a user drives it: register, train, query, save, load."""

import warnings

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback
from scvi import REGISTRY_KEYS

import scvae
from scvae._result_keys import LATENT_KEY
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET, KLWeights

LIKELIHOOD_VARIANTS = [
    {"likelihood": "poisson"},
    {"likelihood": "nb"},
    {"likelihood": "zip"},
    {"likelihood": "zinb"},
    {"likelihood": "constrained_poisson"},
    {"likelihood": "poisson", "scale_by_library": False},
    {"likelihood": "nb", "dispersion": "gene-cell"},
    {"likelihood": "nb", "piecewise_cutoff": 3},
    {"likelihood": "poisson", "piecewise_cutoff": 2},
    {"likelihood": "constrained_poisson", "piecewise_cutoff": 4},
]


@pytest.mark.parametrize(
    "options", LIKELIHOOD_VARIANTS, ids=lambda o: "-".join(map(str, o.values()))
)
def test_every_likelihood_trains_and_writes_the_latent_space(adata, options):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_latent=4, n_hidden=32, **options)
    model.train(max_epochs=3, **QUIET)
    elbo = model.history["elbo_train"]["elbo_train"].to_numpy(dtype=float)
    assert elbo[-1] > elbo[0]  # the ELBO goes up
    assert adata.obsm[LATENT_KEY].shape == (adata.n_obs, 4)
    np.testing.assert_allclose(adata.obsm[LATENT_KEY], model.get_latent_representation())
    # The ELBO bounds the importance-weighted log-likelihood from below.
    assert model.get_elbo() <= model.get_marginal_ll(n_mc_samples=20) + 1.0


def test_annotate_can_be_switched_off(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_hidden=16)
    model.train(max_epochs=1, annotate=False, **QUIET)
    assert LATENT_KEY not in adata.obsm


def test_a_vae_removes_an_earlier_gmvaes_clusters_under_its_key(adata):
    scvae.setup_anndata(adata)
    scvae.GMVAE(adata, n_clusters=3, n_hidden=16).train(max_epochs=1, **QUIET)
    assert "scvae_cluster" in adata.obs and "dendrogram_scvae_cluster" in adata.uns
    adata.uns["scvae_cluster_colors"] = ["#1f77b4", "#ff7f0e", "#279e68"]  # as a plot stores
    scvae.VAE(adata, n_hidden=16).train(max_epochs=1, **QUIET)
    assert LATENT_KEY in adata.obsm
    left = {"scvae_cluster", "scvae_cluster_confidence", "scvae_cluster_probabilities"}
    assert not left & (set(adata.obs) | set(adata.obsm))
    assert not {"dendrogram_scvae_cluster", "scvae_cluster_colors"} & set(adata.uns)


@pytest.mark.parametrize("likelihood", ["poisson", "nb", "zip", "zinb"])
def test_expression_at_the_cells_library_is_the_normalised_expression_times_it(adata, likelihood):
    """As in scvi-tools: library_size="latent" gives the decoded expression at the cell's
    library size, without the extra zeros of a zero-inflated likelihood."""
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_latent=3, n_hidden=16, likelihood=likelihood)
    model.train(max_epochs=1, **QUIET)
    torch.manual_seed(0)  # the same draw of z for both
    scale = model.get_normalized_expression(return_numpy=True)
    torch.manual_seed(0)
    at_library = model.get_normalized_expression(library_size="latent", return_numpy=True)
    np.testing.assert_allclose(at_library, scale * model.get_latent_library_size(), rtol=1e-4)


def test_queries_have_the_shapes_scanpy_and_scvi_users_expect(adata):
    scvae.setup_anndata(adata, layer="counts", batch_key="batch")
    model = scvae.VAE(
        adata, n_latent=5, n_hidden=[32, 16], likelihood="zinb", dispersion="gene-batch"
    )
    model.train(max_epochs=2, **QUIET)
    assert model.get_latent_representation().shape == (300, 5)
    expression = model.get_normalized_expression(library_size=1e4)
    assert expression.shape == (300, 60)
    np.testing.assert_allclose(expression.sum(1), 1e4, rtol=1e-3)
    samples = model.posterior_predictive_sample(n_samples=2)
    assert samples.shape == (300, 60, 2)
    assert (samples.todense() >= 0).all()
    per_cell = model.get_marginal_ll(n_mc_samples=10, return_mean=False)
    assert per_cell.shape == (300,)
    assert model.get_elbo() <= model.get_marginal_ll(n_mc_samples=50) + 1.0
    error = model.get_reconstruction_error()
    # The ELBO is the negative reconstruction loss minus the (non-negative) KL.
    assert -error["reconstruction_loss"] >= model.get_elbo() - 1.0
    history = model.history
    for key in ("elbo_train", "reconstruction_loss_train", "kl_local_train", "elbo_validation"):
        assert key in history


def test_save_load_round_trip_gives_identical_latents(adata, tmp_path):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_hidden=16)
    model.train(max_epochs=2, **QUIET)
    model.save(tmp_path / "model")
    loaded = scvae.VAE.load(tmp_path / "model", adata=adata)
    np.testing.assert_array_equal(
        model.get_latent_representation(), loaded.get_latent_representation()
    )


def test_deep_scvae_style_encoder_trains_and_learns(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_hidden=[1000, 500, 250, 100], likelihood="poisson")
    model.train(max_epochs=5, plan_kwargs={"lr": 1e-3}, **QUIET)  # guard raises on non-finite
    elbo = model.history["elbo_train"]["elbo_train"].to_numpy(dtype=float)
    assert elbo[-1] > elbo[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"likelihood": "gaussian"}, "likelihood"),
        ({"dispersion": "cell"}, "dispersion"),
        ({"likelihood": "zinb", "piecewise_cutoff": 3}, "piecewise"),
        ({"likelihood": "constrained_poisson", "scale_by_library": False}, "constrained_poisson"),
        ({"n_hidden": [64, 32], "n_layers": 3}, "n_layers"),
        ({"n_latent": 0}, "n_latent"),
        ({"use_batch_norm": "latent"}, "use_batch_norm='latent' is not one of"),
        ({"n_hidden": "128"}, r"n_hidden must be a positive integer or a list .* got '128'"),
        ({"n_hidden": [64.7, 32]}, r"n_hidden must be .* got \[64\.7, 32\]"),
        ({"n_layers": -1}, "n_layers must be a positive integer, got -1"),
        ({"n_latent": 4.0}, "n_latent must be a positive integer, got 4.0"),
        ({"dropout_rate": "0.1"}, "dropout_rate must be a number in"),
    ],
)
def test_bad_architecture_options_fail_before_training(adata, options, message):
    scvae.setup_anndata(adata)
    with pytest.raises(ValueError, match=message):
        scvae.VAE(adata, **options)


@pytest.mark.parametrize("option", ["scale_by_library", "encode_batch"])
def test_a_flag_given_as_a_string_is_refused(adata, option):
    """``"False"`` is a true value: taken as it is, it would do the opposite."""
    scvae.setup_anndata(adata)
    with pytest.raises(TypeError, match=rf"{option} must be True(,| or) False"):
        scvae.VAE(adata, **{option: "False"})


def test_widths_may_be_numpy_integers(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_hidden=np.int64(16), n_layers=2)
    assert "hidden [16, 16]" in model._model_summary_string


@pytest.mark.parametrize("model_cls", [scvae.VAE, scvae.GMVAE])
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_epochs": -1}, ValueError, "max_epochs must be a positive integer"),
        ({"max_epochs": 0}, ValueError, "max_epochs must be a positive integer"),
        ({"max_epochs": True}, ValueError, "max_epochs must be a positive integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer of at least 2"),
        ({"plan_kwargs": {"lrr": 1e-3}}, TypeError, r"plan_kwargs \['lrr'\] are options of"),
        ({"batch_size": None}, ValueError, "batch_size must be an integer of at least 2"),
        ({"train_size": 1.0, "early_stopping": True}, ValueError, "holds out no cells"),
        (
            {"validation_size": 0.0, "early_stopping": True},
            ValueError,
            "but validation_size=0.0 holds out no cells",
        ),
        (
            {"train_size": 1.0, "plan_kwargs": {"reduce_lr_on_plateau": True}},
            ValueError,
            r"reduce_lr_on_plateau.*holds out no cells",
        ),
        (
            {"check_val_every_n_epoch": 3, "plan_kwargs": {"reduce_lr_on_plateau": True}},
            ValueError,
            r"every epoch, but check_val_every_n_epoch=3",
        ),
        ({"key_added": None}, ValueError, "key_added must be a non-empty string"),
        ({"key_added": ""}, ValueError, "key_added must be a non-empty string"),
        ({"key_added": "run/1"}, ValueError, "holds a '/', which h5ad files read as a path"),
        ({"train_size": "0.9"}, ValueError, r"train_size is the share .* got '0\.9'"),
        ({"validation_size": "0.1"}, ValueError, r"validation_size is the share .* got '0\.1'"),
        ({"early_stopping": "no"}, TypeError, "early_stopping must be True or False"),
        ({"annotate": "no"}, TypeError, "annotate must be True or False"),
        (
            {"datasplitter_kwargs": {"blocks_size": 64}},
            TypeError,
            r"datasplitter_kwargs \['blocks_size'\] are options of neither",
        ),
        (
            {"datasplitter_kwargs": {"shuffle_set_split": False}},
            TypeError,
            r"\['shuffle_set_split'\] are arguments of train\(\) itself",
        ),
    ],
)
def test_bad_training_options_fail_before_any_step(adata, model_cls, options, error, message):
    """A refused option leaves a trained model exactly as it was (no step, no batch
    statistics moved, a GMVAE's clusters kept)."""
    scvae.setup_anndata(adata)
    model = model_cls(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    latent, summary = model.get_latent_representation(), model.summary()
    with pytest.raises(error, match=message):
        model.train(**options, **QUIET)
    np.testing.assert_array_equal(model.get_latent_representation(), latent)
    assert model.summary() == summary


def test_results_are_not_written_over_the_registered_batch_column(adata):
    adata.obs["run_cluster"] = adata.obs["batch"]
    scvae.setup_anndata(adata, batch_key="run_cluster")
    model = scvae.GMVAE(adata, n_clusters=2, n_latent=2, n_hidden=8)
    with pytest.raises(ValueError, match=r"adata\.obs\['run_cluster'\], the column registered"):
        model.train(max_epochs=1, key_added="run", **QUIET)
    vae = scvae.VAE(adata, n_latent=2, n_hidden=8)
    vae.train(max_epochs=1, **QUIET)
    with pytest.raises(ValueError, match="the column registered as batch_key"):
        vae.annotate(key_added="run")  # would drop it as an earlier model's clusters
    assert (adata.obs["run_cluster"] == adata.obs["batch"]).all()


@pytest.mark.parametrize("model_cls", [scvae.VAE, scvae.GMVAE])
def test_latents_take_scvi_tools_loader_options(adata, model_cls):
    """scvi-tools' ``get_latent_representation(..., **data_loader_kwargs)``: fetching
    options are taken (and change nothing), a misspelt one is refused."""
    scvae.setup_anndata(adata)
    model = model_cls(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    latent = model.get_latent_representation(num_workers=2, persistent_workers=False)
    np.testing.assert_array_equal(latent, model.get_latent_representation())
    with pytest.raises(TypeError, match=r"\['num_worker'\] are not options"):
        model.get_latent_representation(num_worker=2)


def test_batch_conditioned_decoder_with_per_batch_dispersion():
    adata = synthetic_counts(n_cells=200, n_genes=30, n_batches=3, batch_effect=0.5, seed=2)
    scvae.setup_anndata(adata, batch_key="batch")
    model = scvae.VAE(adata, n_hidden=16, dispersion="gene-batch", encode_batch=True)
    assert model.module.decoder.parameter_heads["log_theta"].value.shape == (3, 30)
    model.train(max_epochs=2, **QUIET)
    as_batch_0 = model.get_normalized_expression(transform_batch="batch_0")
    as_batch_1 = model.get_normalized_expression(transform_batch="batch_1")
    assert not np.allclose(as_batch_0, as_batch_1)  # the decoder uses the batch


class ModuleModes(Callback):
    """Records whether the module is in training mode at every training step."""

    def __init__(self):
        self.modes = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.modes.append(pl_module.module.training)


def test_training_again_or_after_loading_uses_dropout_and_batch_statistics(adata, tmp_path):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_latent=3, n_hidden=16)
    for _ in range(2):
        modes = ModuleModes()
        model.train(max_epochs=1, callbacks=[modes], **QUIET)
        assert modes.modes and all(modes.modes)
        assert not model.module.training  # queries run in eval mode
    model.save(tmp_path / "model")
    loaded = scvae.VAE.load(tmp_path / "model", adata=adata)
    modes = ModuleModes()
    loaded.train(max_epochs=1, callbacks=[modes], **QUIET)
    assert modes.modes and all(modes.modes)


def test_annotation_reads_sparse_counts_as_sparse_minibatches_with_the_same_results(backed):
    """After training, scvae's passes over the cells read sparse (here: backed) counts as
    sparse minibatches, as training does, and give what dense minibatches give."""
    on_disk, _ = backed
    model = scvae.VAE(on_disk, n_latent=3, n_hidden=16)
    model.train(max_epochs=2, annotate=False, **QUIET)

    def latent_means(loader):
        means = [
            model.module.inference(**model.module._get_inference_input(tensors))["qz"].loc
            for tensors in loader
        ]
        return torch.cat(means).detach().numpy()

    sparse = model._query_loader(on_disk)
    assert next(iter(sparse))[REGISTRY_KEYS.X_KEY].layout == torch.sparse_csr
    dense = model._make_data_loader(on_disk)  # scvi-tools' queries: dense minibatches
    assert next(iter(dense))[REGISTRY_KEYS.X_KEY].layout == torch.strided
    np.testing.assert_allclose(latent_means(sparse), latent_means(dense), rtol=1e-5, atol=1e-6)
    model.annotate()
    np.testing.assert_allclose(on_disk.obsm[LATENT_KEY], latent_means(dense), rtol=1e-5, atol=1e-6)
    expected, layouts = latent_means(dense), []
    inference = model.module.inference

    def spy(x, *args, **kwargs):
        layouts.append(x.layout)
        return inference(x, *args, **kwargs)

    model.module.inference = spy
    np.testing.assert_allclose(model.get_latent_representation(), expected, rtol=1e-5, atol=1e-6)
    assert layouts and set(layouts) == {torch.sparse_csr}


class EarlyStoppingMode(Callback):
    def on_train_start(self, trainer, pl_module):
        self.mode = trainer.early_stopping_callback.mode


@pytest.mark.parametrize(
    ("monitor", "mode"), [("elbo_validation", "max"), ("reconstruction_loss_validation", "min")]
)
def test_early_stopping_follows_the_direction_of_its_metric(adata, monitor, mode):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    seen = EarlyStoppingMode()
    model.train(
        max_epochs=1, early_stopping=True, early_stopping_monitor=monitor, callbacks=seen, **QUIET
    )
    assert seen.mode == mode  # a single callback, as Lightning takes it, is accepted


def test_training_options_as_users_pass_them():
    adata = synthetic_counts(n_cells=129, n_genes=20, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    # All 129 cells train: the last minibatch of one cell cannot be batch-normalised, so it
    # is left out, and scvi-tools' warning of it is not passed on.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.train(max_epochs=np.int64(2), train_size=1.0, **QUIET)
    assert not [w for w in caught if "small size of 1 samples" in str(w.message)]
    model.train(max_epochs=2.0, plan_kwargs={"n_steps_kl_warmup": 1}, **QUIET)
    assert model.history["kl_weight"].iloc[-1, 0] == 1.0  # steps, not scvi-tools' 400 epochs


def test_the_kl_warm_up_ends_by_the_last_epoch(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_hidden=8)
    record = KLWeights()
    model.train(max_epochs=4, callbacks=[record], **QUIET)
    np.testing.assert_allclose(record.weights, [0, 0.25, 0.5, 0.75])  # 1 after the last
    record = KLWeights()
    model.train(max_epochs=2, plan_kwargs={"n_epochs_kl_warmup": 10}, callbacks=[record], **QUIET)
    np.testing.assert_allclose(record.weights, [0, 0.1])  # a warm-up asked for is kept


def test_the_posterior_mean_leaves_the_sessions_random_state(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model.get_latent_representation()
    torch.testing.assert_close(torch.rand(3), expected)
