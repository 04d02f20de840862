"""scvae.pl: every plot renders to a non-trivial PNG with titles and axis labels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import scvae
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET


@pytest.fixture(scope="module")
def trained():
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, n_hidden=16)
    model.train(max_epochs=3, **QUIET)
    return model, adata


def _check_png(axes, path):
    axes = axes if isinstance(axes, list) else [axes]
    assert path.stat().st_size > 5_000
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")


def test_training_curves(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "curves.png"
    axes = scvae.pl.training_curves(model, save=path)
    assert [ax.get_title() for ax in axes] == [
        "ELBO",
        "reconstruction loss",
        "KL divergence (total)",
        "KL divergence of z",
        "KL divergence of y",
    ]
    placements = [epoch - 0.5 for epoch in model.schedule_.placement_epochs]
    for ax in axes:
        labels = [line.get_label() for line in ax.get_lines()]
        assert "train" in labels and "validation" in labels
        marks = [line.get_xdata() for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert [mark[0] for mark in marks if len(mark)] == placements
    # the validation ELBO: higher is better, as get_elbo
    (elbo,) = [line.get_ydata() for line in axes[0].get_lines() if line.get_label() == "validation"]
    assert (elbo < 0).all()
    _check_png(axes, path)


def test_plots_of_a_model_that_cannot_have_them_say_why(trained):
    adata = synthetic_counts(n_cells=60, n_genes=20, seed=0)
    scvae.setup_anndata(adata)
    vae = scvae.VAE(adata, n_hidden=8)
    with pytest.raises(ValueError, match="no training history: train it first"):
        scvae.pl.training_curves(vae)
    for plot in (scvae.pl.cluster_selection, scvae.pl.cluster_profiles):
        with pytest.raises(TypeError, match="needs a GMVAE, got a VAE"):
            plot(vae)
    with pytest.raises(ValueError, match="n_genes must be a positive integer"):
        scvae.pl.cluster_profiles(trained[0], n_genes=0)


def test_one_epoch_of_training_curves_is_drawn_as_points():
    adata = synthetic_counts(n_cells=60, n_genes=20, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    for axis in scvae.pl.training_curves(model):
        assert all(line.get_marker() == "o" for line in axis.lines)
        drawn = {line.get_label(): line for line in axis.lines if len(line.get_xdata())}
        assert {"train", "validation"} <= set(drawn), axis.get_title()
        for split in ("train", "validation"):  # the one epoch's value, as a point
            values = drawn[split].get_ydata()
            assert len(values) == 1 and np.isfinite(values).all(), (axis.get_title(), split)
    plt.close("all")


def test_placements_of_a_gmvae_trained_again_are_drawn_where_they_were():
    adata = synthetic_counts(n_cells=60, n_genes=20, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=2, n_latent=2, n_hidden=8)
    model.train(max_epochs=4, component_init_epochs=[2], stop_when_converged=False, **QUIET)
    model.train(max_epochs=3, component_init_epochs=[1], stop_when_converged=False, **QUIET)
    axis = scvae.pl.training_curves(model)[0]
    dotted = [
        line.get_xdata()[0]
        for line in axis.get_lines()
        if line.get_linestyle() == ":" and len(line.get_xdata())  # not the legend's entry
    ]
    assert dotted == [4.5]  # after the first of the second fit's epochs, history index 4
    plt.close("all")


def test_training_curves_needs_one_axes_per_panel(trained):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="axes"):
        scvae.pl.training_curves(trained[0], ax=ax)
    n_panels = len(scvae.pl.training_curves(trained[0]))
    _, grid = plt.subplots(1, n_panels, squeeze=False)  # a 2-D array of axes, as subplots gives
    assert len(scvae.pl.training_curves(trained[0], ax=grid)) == n_panels
    plt.close("all")


def test_cluster_profiles(trained, tmp_path):
    model, _ = trained
    _, ax = plt.subplots()
    path = tmp_path / "profiles.png"
    returned = scvae.pl.cluster_profiles(model, n_genes=4, ax=ax, save=path)
    assert returned is ax
    assert len(ax.get_xticklabels()) == 12 and len(ax.get_yticklabels()) == 3
    shown = [t.get_text() for t in ax.get_xticklabels()]
    assert len(set(shown)) == 12 and set(shown) <= set(model.adata.var_names)
    # Each cluster's 4 genes are its markers: its log1p expression per 10k minus the mean of
    # the other two clusters' is at least that of any gene not shown.
    log_profiles = np.log1p(model.get_cluster_profiles() * 1e4)
    hidden = log_profiles.columns.difference(shown)
    for k in range(3):
        fold_changes = log_profiles.iloc[k] - log_profiles.drop(index=log_profiles.index[k]).mean()
        genes = shown[4 * k : 4 * k + 4]
        assert fold_changes[genes].min() >= fold_changes[hidden].max() - 1e-5, k
    centred = (log_profiles - log_profiles.mean(0))[shown].to_numpy()
    np.testing.assert_allclose(ax.images[0].get_array(), centred, rtol=1e-4, atol=1e-5)
    _check_png(ax, path)


def test_cluster_probabilities(trained, tmp_path):
    _, adata = trained
    path = tmp_path / "probabilities.png"
    ax = scvae.pl.cluster_probabilities(adata, save=path)
    assert ax.images[0].get_array().shape == (3, adata.n_obs)
    _check_png(ax, path)
    with pytest.raises(KeyError, match="GMVAE"):
        scvae.pl.cluster_probabilities(synthetic_counts(n_cells=10, n_genes=5))
    renamed = adata.copy()
    renamed.obsm["run2_cluster_probabilities"] = renamed.obsm.pop("scvae_cluster_probabilities")
    with pytest.raises(KeyError, match=r"pass key_added= one of \['run2'\]"):
        scvae.pl.cluster_probabilities(renamed)
    image = scvae.pl.cluster_probabilities(renamed, key_added="run2").images[0].get_array()
    np.testing.assert_array_equal(image, ax.images[0].get_array())
    model = trained[0]  # the model draws its own AnnData's probabilities
    image = scvae.pl.cluster_probabilities(model).images[0].get_array()
    np.testing.assert_array_equal(image, ax.images[0].get_array())
    with pytest.raises(TypeError, match="not a DataFrame"):
        scvae.pl.cluster_probabilities(adata.obs)


def test_cluster_selection(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "selection.png"
    ax = scvae.pl.cluster_selection(model, save=path)
    lines = {line.get_label(): line for line in ax.lines}
    # A fixed K (the fixture's 3) of 3 components: both merges keep clusters apart.
    assert "merged" not in lines and len(lines["kept apart"].get_xdata()) == 2
    assert lines["3 clusters"].get_xdata()[0] == model.cluster_selection_.n_clusters == 3
    threshold = model.cluster_selection_.threshold
    assert lines[f"cut at {threshold:.2f}"].get_ydata()[0] == threshold
    assert lines["auto's threshold, 0.95"].get_ydata()[0] == 0.95
    assert model.n_clusters == 3 and ax.get_title().endswith(": 3 clusters")
    model.select_clusters(2)
    lines = {line.get_label(): line for line in scvae.pl.cluster_selection(model).lines}
    assert len(lines["merged"].get_xdata()) == 1 and len(lines["kept apart"].get_xdata()) == 1
    model.select_clusters(3)  # the module's fixture as it was
    _check_png(ax, path)


def test_model_comparison(tmp_path):
    table = pd.DataFrame(
        {
            "model": ["VAE", "VAE", "GMVAE", "GMVAE"],
            "likelihood": ["poisson", "nb", "poisson", "nb"],
            "n_clusters": pd.array([None, None, 5, 5], dtype="Int64"),
            "heldout_elbo": [-120.0, -110.0, -118.0, -108.0],
        }
    )
    path = tmp_path / "comparison.png"
    ax = scvae.pl.model_comparison(table, save=path)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["poisson", "nb"]
    assert [line.get_label() for line in ax.get_lines()] == ["VAE", "GMVAE (K=5)"]
    _check_png(ax, path)
    table.to_csv(tmp_path / "comparison.csv", index=False)  # K read back as a float
    ax = scvae.pl.model_comparison(pd.read_csv(tmp_path / "comparison.csv"))
    assert [line.get_label() for line in ax.get_lines()] == ["VAE", "GMVAE (K=5)"]
    with pytest.raises(KeyError, match="ari"):
        scvae.pl.model_comparison(table, metric="ari")
    with pytest.raises(ValueError, match="no rows"):
        scvae.pl.model_comparison(table[table["model"] == "SCVI"])
    # GMVAEs that chose their K are one series, whatever K each likelihood chose.
    table["auto_clusters"] = [False, False, True, True]
    table["n_clusters"] = pd.array([None, None, 4, 6], dtype="Int64")
    ax = scvae.pl.model_comparison(table)
    assert [line.get_label() for line in ax.get_lines()] == ["VAE", "GMVAE (auto)"]
