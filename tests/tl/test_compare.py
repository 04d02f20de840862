"""scvae.tl.compare_models and its evaluation helpers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import scvae
from scvae.datasets import synthetic_counts
from scvae.tl._evaluate import evaluate_model
from scvae.tl._fit import fit_model, heldout_split, unregistered_copy


@pytest.fixture
def tiny():
    return synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)


def test_compare_models_table_and_leaves_adata_alone(tiny):
    scvae.setup_anndata(tiny, layer="counts")
    before = tiny.copy()
    manager = scvae.VAE._setup_adata_manager_store[tiny.uns["_scvi_uuid"]]
    table = scvae.tl.compare_models(
        tiny,
        likelihoods=("poisson", "nb"),
        n_clusters=(None, 3),
        labels_key="cell_type",
        max_epochs=2,
        n_mc_samples=5,
        layer="counts",
        n_hidden=16,
    )
    assert list(table.columns) == [
        "model",
        "likelihood",
        "n_clusters",
        "auto_clusters",
        "heldout_elbo",
        "heldout_log_likelihood",
        "ari",
        "nmi",
    ]
    assert list(table["model"]) == ["VAE", "VAE", "GMVAE", "GMVAE"]
    assert list(table["likelihood"]) == ["poisson", "nb", "poisson", "nb"]
    assert table["n_clusters"].isna().tolist() == [True, True, False, False]
    assert np.isfinite(table[["heldout_elbo", "heldout_log_likelihood"]].to_numpy()).all()
    assert (table["heldout_log_likelihood"] < 0).all()
    gmvae = table["model"] == "GMVAE"
    assert table.loc[gmvae, ["ari", "nmi"]].notna().all().all()
    assert table.loc[~gmvae, ["ari", "nmi"]].isna().all().all()
    # The user's AnnData and its registration are untouched.
    assert list(tiny.obs.columns) == list(before.obs.columns)
    assert set(tiny.obsm) == set(before.obsm) and set(tiny.uns) == set(before.uns)
    assert tiny.uns["_scvi_uuid"] == before.uns["_scvi_uuid"]
    assert (tiny.X != before.X).nnz == 0
    assert scvae.VAE._setup_adata_manager_store[tiny.uns["_scvi_uuid"]] is manager


def test_compare_models_rows_are_the_models_they_name(tiny):
    """Each row is the model of its likelihood, trained on the training cells, scored on the
    held-out cells, and its ARI/NMI are its clusters' against the true labels."""
    options = {"max_epochs": 5, "n_mc_samples": 5, "n_hidden": 16}
    table = scvae.tl.compare_models(
        tiny, likelihoods=("poisson", "nb"), n_clusters=(3,), labels_key="cell_type", **options
    )
    # The counts are overdispersed (negative binomial): a Poisson fits them far worse.
    poisson, nb = table.iloc[0], table.iloc[1]
    assert poisson["likelihood"] == "poisson" and nb["likelihood"] == "nb"
    assert poisson["heldout_log_likelihood"] < nb["heldout_log_likelihood"] - 100
    assert poisson["heldout_elbo"] < nb["heldout_elbo"] - 100
    train_idx, heldout_idx = heldout_split(tiny.n_obs, 0.1, seed=0)
    labels = tiny.obs["cell_type"].to_numpy()
    for _, row in table.iterrows():
        # The same model, trained by hand on the training cells only with the same seed.
        model = fit_model(
            unregistered_copy(tiny, train_idx),
            n_clusters=3,
            seed=0,
            train_kwargs={"max_epochs": 5, "enable_progress_bar": False},
            likelihood=row["likelihood"],
            n_hidden=16,
        )
        heldout = evaluate_model(model, unregistered_copy(tiny, heldout_idx), n_mc_samples=5)
        training = evaluate_model(model, unregistered_copy(tiny, train_idx), n_mc_samples=5)
        assert row["heldout_elbo"] == pytest.approx(heldout["elbo"], rel=1e-6)
        assert row["heldout_log_likelihood"] == pytest.approx(heldout["log_likelihood"], rel=1e-6)
        assert row["heldout_elbo"] != pytest.approx(training["elbo"], rel=1e-3)
        # ARI and NMI over all cells against the true labels, as sklearn computes them.
        clusters = model.predict(unregistered_copy(tiny))
        assert row["ari"] == pytest.approx(adjusted_rand_score(labels, clusters))
        assert row["nmi"] == pytest.approx(normalized_mutual_info_score(labels, clusters))
        assert row["ari"] > 0.2  # the planted types are found, in part, after 5 epochs


def test_compare_models_rejects_unknown_labels(tiny):
    with pytest.raises(KeyError, match="nope"):
        scvae.tl.compare_models(tiny, labels_key="nope")


def test_heldout_split_is_a_partition():
    train, heldout = heldout_split(50, 0.1, seed=3)
    assert len(heldout) == 5 and len(train) == 45
    assert np.array_equal(np.sort(np.concatenate([train, heldout])), np.arange(50))
    assert np.array_equal(heldout, heldout_split(50, 0.1, seed=3)[1])
    with pytest.raises(ValueError, match="heldout_fraction"):
        heldout_split(50, 1.0, seed=0)


def test_unregistered_copy_drops_scvi_entries(tiny):
    scvae.setup_anndata(tiny)
    copy = unregistered_copy(tiny, [0, 1, 2])
    assert copy.n_obs == 3
    assert not [k for k in copy.uns if k.startswith("_scvi")]
    assert not [c for c in copy.obs if c.startswith("_scvi")]
    assert "_scvi_uuid" in tiny.uns and isinstance(tiny.obs, pd.DataFrame)


def test_compare_models_reports_the_number_of_clusters_auto_chose(tiny):
    table = scvae.tl.compare_models(
        tiny,
        likelihoods=("nb",),
        n_clusters=(None, "auto", 3),
        labels_key="cell_type",
        max_epochs=1,
        n_mc_samples=2,
        n_hidden=16,
    )
    assert str(table["n_clusters"].dtype) == "Int64"
    assert list(table["model"]) == ["VAE", "GMVAE", "GMVAE"]
    assert pd.isna(table["n_clusters"][0]) and table["n_clusters"][2] == 3
    # The auto GMVAE's row has the number of clusters it chose, as its own fit reports it.
    model = scvae.tl.fit_model(
        unregistered_copy(tiny, heldout_split(tiny.n_obs, 0.1, 0)[0]),
        n_clusters="auto",
        train_kwargs={"max_epochs": 1, "enable_progress_bar": False},
        likelihood="nb",
        n_hidden=16,
    )
    assert table["n_clusters"][1] == model.n_clusters >= 1
    assert list(table["auto_clusters"]) == [False, True, False]
    assert table.loc[1, ["ari", "nmi"]].notna().all()


def with_nan_labels(adata):
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(object)
    adata.obs.iloc[:2, adata.obs.columns.get_loc("cell_type")] = np.nan
    return adata


def heldout_only_batch(adata):
    """A batch of one cell, the first held out by compare_models' default split."""
    adata.obs["batch"] = "a"
    adata.obs.iloc[heldout_split(adata.n_obs, 0.1, 0)[1][0], 1] = "b"
    return adata


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"n_clusters": (None, "many")}, ValueError, "None .a VAE., a positive integer or 'auto'"),
        ({"n_clusters": (None, 0)}, ValueError, "got 0"),
        # 135 cells are not held out, and a GMVAE trains on 90% of those.
        ({"n_clusters": (None, 500)}, ValueError, "more than the 122 training cells"),
        ({"n_clusters": (None, 130)}, ValueError, "more than the 122 training cells"),
        (
            {"n_clusters": (None, 3), "train_kwargs": {"plan_kwargs": {"n_epochs_kl_warmup": 400}}},
            ValueError,
            "warm-up of 400 epochs lasts all max_epochs=1",
        ),
        ({"n_clusters": (None, 3), "train_kwargs": {"batch_size": 1}}, ValueError, "batch_size"),
        ({"n_clusters": ()}, ValueError, "non-empty list"),
        ({"n_mc_samples": True}, ValueError, "n_mc_samples"),
        ({"train_kwargs": {"max_epochs": 5}}, ValueError, "max_epochs as an argument"),
        ({"likelihoods": ("nb", "gamma")}, ValueError, r"Unknown likelihoods \['gamma'\]"),
        ({"labels_key": "cell_type", "prepare": with_nan_labels}, ValueError, "2 of 150 cells"),
        ({"n_mc_samples": 0}, ValueError, "n_mc_samples"),
        ({"max_epochs": 0}, ValueError, "max_epochs"),
        ({"train_kwargs": {"n_restarts": 2}}, TypeError, r"\['n_restarts'\] are options of GMVAE"),
        ({"n_clusters": (None, 3), "prior": "learnt"}, TypeError, "prior"),
        ({"n_clusters": (3, None), "prior": "learned"}, TypeError, "prior"),
        ({"n_clusters": (None, 3), "inference": "x"}, TypeError, "inference"),
        ({"batch_key": "batch", "prepare": heldout_only_batch}, ValueError, r"Batches \['b'\]"),
    ],
)
def test_compare_models_checks_every_model_before_training_any(
    tiny, monkeypatch, options, error, message
):
    def fit_model(*args, **kwargs):
        raise AssertionError("a model was trained before the options were checked")

    monkeypatch.setattr(scvae.tl._compare, "fit_model", fit_model)
    options = dict(options)
    adata = options.pop("prepare", lambda a: a)(tiny)
    with pytest.raises(error, match=message):
        scvae.tl.compare_models(adata, max_epochs=options.pop("max_epochs", 1), **options)


def test_one_model_type_needs_no_list(tiny):
    table = scvae.tl.compare_models(
        tiny, likelihoods="nb", n_clusters=None, max_epochs=1, n_mc_samples=2, n_hidden=8
    )
    assert list(table["likelihood"]) == ["nb"] and table["n_clusters"].isna().all()
