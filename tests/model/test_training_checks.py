"""The checks of ``train()``'s options count the cells as scvi-tools' split does, and refuse
what would fail or be ignored only once training runs."""

import itertools
import warnings

import numpy as np
import pytest
from scvi.dataloaders import DataSplitter
from scvi.dataloaders._data_splitting import validate_data_split

import scvae
from scvae.datasets import synthetic_counts
from scvae.model import training_cells
from scvae.model._training_checks import split_sizes
from scvae.train import logged_metrics
from tests.helpers import QUIET

SIZES = [None, 0.5, 0.8, 0.9, 0.95, 0.999, 1.0]


@pytest.mark.parametrize("validation_size", [None, 0.0, 0.05, 0.1])
@pytest.mark.parametrize("drop_last", [False, True])
def test_the_split_is_counted_as_scvi_tools_counts_it(validation_size, drop_last):
    n_compared = 0
    for n_cells, train_size, batch_size in itertools.product(
        [*range(3, 40), 129, 130, 131, 200, 257, 1001], SIZES, [2, 3, 8, 16, 64, 128]
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                expected = validate_data_split(
                    n_cells,
                    train_size or 0.9,
                    validation_size,
                    batch_size,
                    drop_last,
                    train_size_is_none=not train_size,
                )
            except ValueError:  # options that scvi-tools refuses, and so do scvae's checks
                continue
        options = {"drop_last": True} if drop_last else None
        assert split_sizes(n_cells, train_size, validation_size, batch_size, options) == (
            expected
        ), (n_cells, train_size, validation_size, batch_size)
        n_compared += 1
    assert n_compared > 1000


@pytest.mark.parametrize(("n_cells", "batch_size"), [(10, 8), (9, 128), (130, 128), (200, 64)])
def test_the_split_is_counted_as_the_data_splitter_makes_it(n_cells, batch_size):
    adata = synthetic_counts(n_cells=n_cells, n_genes=5, seed=0)
    scvae.setup_anndata(adata)
    manager = scvae.VAE(adata, n_latent=2, n_hidden=4).adata_manager
    for train_size in (None, 0.999):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            splitter = DataSplitter(manager, train_size=train_size, batch_size=batch_size)
        expected = (splitter.n_train, splitter.n_val)
        assert split_sizes(n_cells, train_size, batch_size=batch_size) == expected
    split = [np.arange(5), np.arange(5, 7), np.arange(7, n_cells)]
    assert split_sizes(n_cells, datasplitter_kwargs={"external_indexing": split}) == (5, 2)


def test_ten_cells_at_eight_a_minibatch_train_on_eight():
    """scvi-tools moves the last minibatch of 1 or 2 cells to the validation cells."""
    assert training_cells(10, None, 8) == 8
    adata = synthetic_counts(n_cells=10, n_genes=20, seed=0)
    scvae.setup_anndata(adata)
    too_many = scvae.GMVAE(adata, n_clusters=9, n_latent=2, n_hidden=8)
    with pytest.raises(ValueError, match=r"n_clusters=9 is more than the 8 training cells"):
        too_many.train(max_epochs=1, batch_size=8, **QUIET)
    assert not too_many.is_trained_
    model = scvae.GMVAE(adata, n_clusters=8, n_latent=2, n_hidden=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scvi-tools announces the cells it moves
        model.train(max_epochs=1, batch_size=8, **QUIET)
    assert len(model.train_indices) == 8


@pytest.mark.parametrize("model_cls", [scvae.VAE, scvae.GMVAE])
@pytest.mark.parametrize(
    "follows", [{"early_stopping": True}, {"plan_kwargs": {"reduce_lr_on_plateau": True}}]
)
@pytest.mark.parametrize(
    ("n_cells", "split", "held_out"),
    [
        (200, {"train_size": 0.999}, "train_size=0.999"),
        (9, {}, "the default train_size=0.9"),
        (200, {"train_size": 0.99, "validation_size": 0.001}, "validation_size=0.001"),
    ],
)
def test_a_validation_metric_without_validation_cells_is_refused_before_training(
    model_cls, follows, n_cells, split, held_out
):
    adata = synthetic_counts(n_cells=n_cells, n_genes=20, seed=0)
    scvae.setup_anndata(adata)
    options = {"n_clusters": 3} if model_cls is scvae.GMVAE else {}
    model = model_cls(adata, n_latent=2, n_hidden=8, **options)
    message = rf"follows elbo_validation, but .*{held_out}.* holds out no cells of the {n_cells}"
    with pytest.raises(ValueError, match=message):
        model.train(max_epochs=3, **split, **follows, **QUIET)
    assert not model.is_trained_


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"early_stopping": True, "early_stopping_monitor": "elbo_val"}, "early_stopping_monitor"),
        (
            {"early_stopping": True, "early_stopping_monitor": "clusters_changed"},
            "early_stopping_monitor",
        ),
        (
            {"plan_kwargs": {"reduce_lr_on_plateau": True, "lr_scheduler_metric": "elbo_trian"}},
            "lr_scheduler_metric",
        ),
    ],
)
def test_a_metric_the_plan_does_not_log_is_refused_with_the_ones_it_does(adata, options, name):
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=2, n_hidden=8)
    with pytest.raises(ValueError, match=rf"{name}=.* does not log: follow one of .*'kl_y_train'"):
        model.train(max_epochs=3, **options, **QUIET)
    assert not model.is_trained_


@pytest.mark.parametrize(
    "model_options",
    [{}, {"n_clusters": 3}, {"n_clusters": 3, "inference": "per_component"}],
    ids=["VAE", "GMVAE", "per_component"],
)
def test_the_metrics_named_as_logged_are_the_ones_in_the_history(adata, model_options):
    scvae.setup_anndata(adata)
    model_cls = scvae.GMVAE if model_options else scvae.VAE
    model = model_cls(adata, n_latent=2, n_hidden=8, **model_options)
    extra = {"stop_when_converged": False} if model_options else {}
    model.train(max_epochs=2, **extra, **QUIET)
    assert set(model.history) == set(logged_metrics(model.module))


def test_early_stopping_on_a_training_metric_needs_no_validation_cells(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(
        max_epochs=2,
        train_size=1.0,
        early_stopping=True,
        early_stopping_monitor="elbo_train",
        plan_kwargs={"reduce_lr_on_plateau": True, "lr_scheduler_metric": "elbo_train"},
        **QUIET,
    )
    assert len(model.history["elbo_train"]) == 2


def test_shares_that_add_up_to_more_than_the_cells_are_refused(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    with pytest.raises(ValueError, match=r"train_size=0.9 and validation_size=0.2 add up"):
        model.train(max_epochs=1, validation_size=0.2, **QUIET)
    assert not model.is_trained_
    indices = [np.arange(250), np.arange(250, 300)]  # external indices set the split instead
    splitter = {"external_indexing": indices}
    model.train(max_epochs=1, validation_size=0.5, datasplitter_kwargs=splitter, **QUIET)
    assert model.is_trained_


@pytest.mark.parametrize("model_cls", [scvae.VAE, scvae.GMVAE])
def test_a_kl_weight_in_plan_kwargs_is_refused_for_its_range(adata, model_cls):
    """The training plan sets the loss's KL weight from its warm-up at every step."""
    scvae.setup_anndata(adata)
    options = {"n_clusters": 3} if model_cls is scvae.GMVAE else {}
    model = model_cls(adata, n_latent=2, n_hidden=8, **options)
    with pytest.raises(ValueError, match=r"'kl_weight'.*overwritten.*max_kl_weight"):
        model.train(max_epochs=2, plan_kwargs={"kl_weight": 0.0}, **QUIET)
    assert not model.is_trained_
