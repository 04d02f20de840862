"""Components merged by how well the counts tell their cells apart; the hierarchy scanpy draws."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.cluster.hierarchy as sch
import scvi
from lightning.pytorch import Callback
from sklearn.metrics import adjusted_rand_score

import scvae
from scvae.datasets import synthetic_counts
from scvae.model._cluster_selection import (
    CELLS_PER_COMPONENT,
    cells_to_evaluate,
    select_clusters,
)
from tests.helpers import QUIET

matplotlib.use("Agg")


def _likelihoods(true_cluster, n_cells=40, gap=5.0, seed=0):
    """Log-likelihoods of cells under components, where the components of one true cluster
    explain its cells equally well (up to noise) and the others ``gap`` nats worse."""
    rng = np.random.default_rng(seed)
    true_cluster = np.asarray(true_cluster)
    cells = np.repeat(np.arange(len(true_cluster)), n_cells)  # each component's own cells
    log_likelihoods = rng.normal(0.0, 1.0, (len(cells), len(true_cluster)))
    same = true_cluster[cells][:, None] == true_cluster[None, :]
    return log_likelihoods - gap * ~same, cells


def test_components_of_one_cluster_are_merged_and_distinct_ones_kept():
    truth = [0, 0, 1, 1, 1, 2]
    log_likelihoods, cells = _likelihoods(truth)
    means = np.random.default_rng(0).normal(size=(6, 2))
    selection = select_clusters(log_likelihoods, cells, np.ones(6), means)
    assert selection.n_clusters == 3
    assert adjusted_rand_score(truth, selection.component_clusters) == 1.0
    merges = selection.merges
    assert list(merges["n_clusters"]) == [5, 4, 3, 2, 1]  # merged down to one group
    assert (merges["separability"].iloc[:3] < 0.9).all()  # within clusters: inseparable
    assert (merges["separability"].iloc[3:] >= 0.97).all()  # between clusters: separable


def test_a_handful_of_cells_is_not_yet_a_cluster():
    # 40 cells of component 0 and 3 of component 1, each preferring its own by 5 nats:
    # component 1's share is (3 + 1) / (3 + 2) = 0.8, under the threshold.
    cells = np.repeat([0, 1], [40, 3])
    log_likelihoods = -5.0 * (cells[:, None] != np.arange(2)[None, :])
    selection = select_clusters(log_likelihoods, cells, np.array([40, 3]), np.eye(2))
    assert selection.merges["separability"].iloc[0] == pytest.approx(0.8)
    assert selection.n_clusters == 1


def test_a_component_without_cells_joins_its_nearest_neighbour():
    log_likelihoods, cells = _likelihoods([0, 1, 2])
    log_likelihoods = np.column_stack([log_likelihoods, np.zeros(len(cells))])
    means = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [4.8, 0.2]])
    selection = select_clusters(log_likelihoods, cells, np.array([1, 1, 1, 0]), means)
    assert selection.n_clusters == 3
    assert selection.component_clusters[3] == selection.component_clusters[1]
    assert selection.merges["separability"].iloc[0] == 0.0


def test_the_linkage_is_a_valid_scipy_tree_over_components_and_over_clusters():
    log_likelihoods, cells = _likelihoods([0, 0, 1, 2, 2])
    selection = select_clusters(log_likelihoods, cells, np.ones(5), np.zeros((5, 2)))
    sch.is_valid_linkage(selection.linkage(), throw=True)
    over_clusters = selection.linkage(clusters_only=True)
    sch.is_valid_linkage(over_clusters, throw=True)
    assert len(over_clusters) == selection.n_clusters - 1
    assert over_clusters[-1, 3] == selection.n_clusters


def test_a_component_without_cells_has_no_say_in_its_group():
    # Components 0 and 3 explain the same cells, 2 its own; the empty component 1 (nearest to
    # 0) would explain 2's cells 60 nats better than 2 does, but has no weight in its group.
    rng = np.random.default_rng(0)
    cells = np.repeat([0, 2, 3], 50)
    log_likelihoods = np.full((150, 4), -1000.0)
    for own, other in ((0, 3), (3, 0)):
        log_likelihoods[cells == own, own] = -100
        log_likelihoods[cells == own, other] = -100 + rng.normal(0, 1, 50)
    log_likelihoods[cells == 2, 2] = -100
    log_likelihoods[:, 1] = -2000
    log_likelihoods[cells == 2, 1] = -40
    means = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [0.2, 0.0]])
    selection = select_clusters(log_likelihoods, cells, np.bincount(cells, minlength=4), means)
    assert selection.n_clusters == 2
    assert selection.component_clusters[2] != selection.component_clusters[0]


def test_the_dendrogram_rises_with_the_separability_of_each_merge_in_its_order():
    truth = [0, 0, 1, 1, 1, 2]
    log_likelihoods, cells = _likelihoods(truth)
    selection = select_clusters(log_likelihoods, cells, np.ones(6), np.zeros((6, 2)))
    separability = selection.merges["separability"].to_numpy()
    heights = selection.linkage()[:, 2]
    np.testing.assert_allclose(heights, np.maximum.accumulate(separability))
    assert heights[-1] > heights[0]  # separable clusters join higher up
    # Every merge a leaf of scanpy's dendrogram: its first merge is the least separable pair.
    leaves = selection.cut(n_clusters=6)
    tree = leaves.dendrogram("c", [str(k) for k in range(6)], np.eye(6), "X_c")["linkage"]
    first = selection.merges.iloc[0]
    assert {int(tree[0, 0]), int(tree[0, 1])} == {int(first["left"]), int(first["right"])}
    np.testing.assert_allclose(tree[:, 2], heights)


def test_the_correlation_matrix_is_undefined_but_quiet_over_a_one_dimensional_latent_space():
    log_likelihoods, cells = _likelihoods([0, 1])
    selection = select_clusters(log_likelihoods, cells, np.ones(2), np.zeros((2, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = selection.cut(n_clusters=2).dendrogram("c", ["0", "1"], np.ones((2, 1)), "X_c")
    assert tree["correlation_matrix"].shape == (2, 2)
    assert np.isnan(tree["correlation_matrix"]).all()


def test_the_hierarchy_can_be_cut_into_any_number_of_clusters_or_at_any_threshold():
    truth = [0, 0, 1, 1, 1, 2]
    log_likelihoods, cells = _likelihoods(truth)
    selection = select_clusters(log_likelihoods, cells, np.ones(6), np.zeros((6, 2)))
    np.testing.assert_array_equal(
        selection.cut(threshold=selection.threshold).component_clusters,
        selection.component_clusters,
    )
    assert selection.cut(n_clusters=6).n_clusters == 6
    assert (selection.cut(n_clusters=1).component_clusters == 0).all()
    two = selection.cut(n_clusters=2)
    assert two.n_clusters == 2 and len(set(two.component_clusters[[0, 1]])) == 1
    assert selection.cut(threshold=0.999).n_clusters < 3  # stricter: coarser
    assert selection.cut(n_clusters=3).merges is selection.merges  # same hierarchy


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "one of n_clusters and a separability threshold, not neither"),
        ({"n_clusters": 2, "threshold": 0.9}, "one of n_clusters and a separability .*, not both"),
        ({"n_clusters": 0}, "from 1 to the 3 components"),
        ({"n_clusters": 4}, "from 1 to the 3 components"),
        ({"threshold": 1.5}, r"in \(0, 1\]"),
        ({"threshold": "0.9"}, r"must be a number in \(0, 1\], got '0\.9'"),
    ],
)
def test_a_bad_cut_is_named(options, message):
    log_likelihoods, cells = _likelihoods([0, 1, 2])
    selection = select_clusters(log_likelihoods, cells, np.ones(3), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=message):
        selection.cut(**options)


@pytest.mark.slow
@pytest.mark.parametrize("n_types", [3, 8, 15])
@pytest.mark.parametrize("seed", range(5))
def test_auto_finds_the_number_of_planted_types(n_types, seed):
    adata = synthetic_counts(n_cells=100 * n_types, n_genes=200, n_clusters=n_types, seed=seed)
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters="auto", n_latent=5, n_hidden=64)
    # 100 epochs compress the default schedule into at least 300 optimisation steps (3 per
    # epoch on the 300 cells of three types): fewer leave the decoder short of its profiles.
    model.train(max_epochs=100, **QUIET)
    assert model.n_clusters == n_types
    assert adjusted_rand_score(adata.obs["cell_type"], adata.obs["scvae_cluster"]) >= 0.95


@pytest.fixture
def auto_model():
    adata = synthetic_counts(n_cells=400, n_genes=100, n_clusters=4, seed=0)
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters="auto", max_clusters=10, n_latent=4, n_hidden=32)
    model.train(max_epochs=40, **QUIET)
    return model, adata


def test_auto_clusters_are_groups_of_components_everywhere(auto_model):
    model, adata = auto_model
    assert model.n_components == 10 and model.n_clusters == len(set(model.component_clusters_))
    probabilities = adata.obsm["scvae_cluster_probabilities"]
    assert probabilities.shape == (adata.n_obs, model.n_clusters)
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)
    components = model.predict(components=True)
    np.testing.assert_array_equal(model.component_clusters_[components], model.predict())
    profiles = model.get_cluster_profiles()
    assert profiles.shape == (model.n_clusters, adata.n_vars)
    np.testing.assert_allclose(profiles.sum(1), 1, rtol=1e-5)
    counts = model.sample(30, cluster=model.n_clusters - 1, seed=0)
    assert counts.shape == (30, adata.n_vars) and (counts >= 0).all()


def test_the_chosen_clusters_do_not_depend_on_which_cells_are_evaluated(auto_model):
    """Every cell of a component of up to CELLS_PER_COMPONENT cells is evaluated, so a new
    draw gives the same merges; with fewer cells per component the draw decides."""
    model, _ = auto_model
    components = np.asarray(model.predict(components=True))[np.asarray(model.train_indices)]
    merges = []
    for seed in (1, 2):
        scvi.settings.seed = seed
        model._merge_components(components)
        merges.append(model.cluster_selection_.merges)
    pd.testing.assert_frame_equal(*merges)
    sizes = np.bincount(components, minlength=model.n_components)
    assert sizes.max() <= CELLS_PER_COMPONENT
    drawn = [cells_to_evaluate(components, len(sizes), 5, seed) for seed in (1, 2)]
    assert all(len(cells) == np.minimum(sizes, 5).sum() for cells in drawn)
    assert not np.array_equal(*drawn)


def test_the_cluster_hierarchy_is_in_uns_for_scanpy(auto_model):
    _, adata = auto_model
    key = "dendrogram_scvae_cluster"
    assert adata.uns[key]["categories_ordered"]
    assert sorted(adata.uns[key]["categories_ordered"]) == sorted(
        adata.obs["scvae_cluster"].cat.categories
    )
    clusters = adata.obs["scvae_cluster"].cat.codes.to_numpy()
    means = [adata.obsm["X_scvae"][clusters == c].mean(0) for c in range(clusters.max() + 1)]
    np.testing.assert_allclose(adata.uns[key]["correlation_matrix"], np.corrcoef(means))
    sc.pl.dendrogram(adata, "scvae_cluster", show=False)
    sc.pl.correlation_matrix(adata, "scvae_cluster", show=False)
    sc.pl.dotplot(adata, adata.var_names[:5], "scvae_cluster", dendrogram=True, show=False)


def test_select_clusters_recuts_a_trained_model_and_writes_the_new_clusters(auto_model):
    model, adata = auto_model
    chosen = model.n_clusters
    model.select_clusters(2)
    assert model.n_clusters == 2 and model.n_components == 10
    assert adata.obs["scvae_cluster"].nunique() <= 2
    assert adata.obsm["scvae_cluster_probabilities"].shape == (adata.n_obs, 2)
    assert len(adata.uns["dendrogram_scvae_cluster"]["categories_ordered"]) <= 2
    np.testing.assert_array_equal(model.predict(), adata.obs["scvae_cluster"].astype(int))
    model.select_clusters(separability=scvae.model.SEPARABILITY_THRESHOLD)
    assert model.n_clusters == chosen  # the training cut again


def same_groups(a, b):
    """Whether two labellings put the same items together."""
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :])


def test_select_clusters_follows_the_hierarchy_of_the_components(auto_model):
    model, adata = auto_model
    trained = model.cluster_selection_
    linkage = trained.linkage()  # the merges of the trained model, in order
    previous = np.arange(model.n_components)
    for n in range(model.n_components, 0, -1):
        model.select_clusters(n)
        groups = model.component_clusters_
        # The groups left after the first n_components - n merges, as scipy cuts the tree.
        assert same_groups(groups, sch.cut_tree(linkage, n_clusters=n).ravel()), n
        np.testing.assert_array_equal(groups, trained.cut(n_clusters=n).component_clusters)
        assert model.n_clusters == len(np.unique(groups)) == n
        # A coarser cut only merges the finer cut's clusters, never splits one.
        assert all(len(np.unique(groups[previous == c])) == 1 for c in np.unique(previous))
        previous = groups
        # A cluster's probability is the sum of its components', and cells go to the likeliest.
        components = model.predict(soft=True, components=True).to_numpy()
        clusters = model.predict(soft=True).to_numpy()
        np.testing.assert_allclose(clusters, components @ np.eye(n)[groups], atol=1e-6)
        np.testing.assert_array_equal(clusters.argmax(1), adata.obs["scvae_cluster"].astype(int))


def test_select_clusters_merges_the_components_of_a_fixed_k_model():
    adata = synthetic_counts(n_cells=300, n_genes=60, n_clusters=3, seed=0)
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=5, n_latent=3, n_hidden=32)
    model.train(max_epochs=30, **QUIET)
    linkage = model.cluster_selection_.linkage()
    model.select_clusters(3)
    assert (model.n_clusters, model.n_components) == (3, 5)
    assert same_groups(model.component_clusters_, sch.cut_tree(linkage, n_clusters=3).ravel())
    assert model.get_cluster_profiles().shape == (3, adata.n_vars)


def test_a_failed_select_clusters_changes_nothing(auto_model):
    model, adata = auto_model
    before, clusters = model.n_clusters, adata.obs["scvae_cluster"].copy()
    with pytest.raises(ValueError, match="n_clusters must be an integer from 1 to the 10"):
        model.select_clusters(11)
    with pytest.raises(ValueError, match="key_added must be a non-empty string"):
        model.select_clusters(2, key_added="")
    with pytest.raises(
        ValueError, match="one of n_clusters and a separability threshold, not neither"
    ):
        model.select_clusters()
    assert model.n_clusters == before
    assert adata.obs["scvae_cluster"].equals(clusters)


class FailAtFirstEpoch(Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        raise RuntimeError("stopped")


class FailInSecondFit(Callback):
    fits = 0  # a class attribute: shared with the copy of the callback each restart gets

    def on_train_start(self, trainer, pl_module):
        type(self).fits += 1
        if type(self).fits == 2:
            raise RuntimeError("stopped")


def fail_after_training(model, *args, **kwargs):
    raise RuntimeError("stopped")


@pytest.mark.parametrize("failure_point", ["first epoch", "second restart", "after training"])
def test_a_new_fit_failing_keeps_the_earlier_fit(failure_point, monkeypatch):
    adata = synthetic_counts(n_cells=150, n_genes=30, n_clusters=3, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters="auto", max_clusters=6, n_latent=3, n_hidden=16)
    model.train(max_epochs=3, **QUIET)
    summary, clusters, latent = model.summary(), model.predict(), model.get_latent_representation()
    annotated = adata.obs["scvae_cluster"].copy()
    FailInSecondFit.fits = 0
    callbacks = {"first epoch": [FailAtFirstEpoch()], "second restart": [FailInSecondFit()]}
    if failure_point == "after training":  # e.g. interrupted while merging components
        monkeypatch.setattr(scvae.GMVAE, "_merge_components", fail_after_training)
    with pytest.raises(RuntimeError, match="stopped") as failure:
        model.train(max_epochs=3, n_restarts=2, callbacks=callbacks.get(failure_point, []), **QUIET)
    assert FailInSecondFit.fits == (2 if failure_point == "second restart" else 0)
    monkeypatch.undo()
    assert "keeps its earlier fit" in "".join(failure.value.__notes__)
    # Weights, history and the cluster hierarchy are the earlier fit's, so they agree.
    assert model.summary() == summary and model.cluster_selection_ is not None
    np.testing.assert_array_equal(model.predict(), clusters)
    np.testing.assert_array_equal(model.get_latent_representation(), latent)
    assert adata.obs["scvae_cluster"].equals(annotated)
    scvae.pl.cluster_selection(model)
    model.select_clusters(2)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_epoch": 3}, TypeError),  # Lightning refuses the misspelt option
        ({"accelerator": "tpu"}, Exception),  # no such device here
    ],
)
def test_a_new_fit_failing_before_its_first_step_keeps_the_earlier_fit(options, error):
    """The weights have not changed, so the earlier fit's clusters still describe them."""
    adata = synthetic_counts(n_cells=150, n_genes=30, n_clusters=3, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters="auto", max_clusters=6, n_latent=3, n_hidden=16)
    model.train(max_epochs=3, **QUIET)
    summary, clusters = model.summary(), model.predict()
    with pytest.raises(error):
        model.train(**options, **QUIET)
    assert model.summary() == summary and model.cluster_selection_ is not None
    np.testing.assert_array_equal(model.predict(), clusters)


def test_a_saved_auto_model_keeps_its_clusters(auto_model, tmp_path):
    model, adata = auto_model
    model.save(tmp_path / "auto")
    loaded = scvae.GMVAE.load(tmp_path / "auto", adata=adata)
    assert loaded.n_clusters == model.n_clusters
    np.testing.assert_array_equal(loaded.predict(), model.predict())


def test_a_bad_n_clusters_is_named():
    adata = synthetic_counts(n_cells=50, n_genes=10)
    scvae.setup_anndata(adata)
    with pytest.raises(ValueError, match="n_clusters must be a positive integer or 'auto'"):
        scvae.GMVAE(adata, n_clusters="many")
    with pytest.raises(ValueError, match="max_clusters"):
        scvae.GMVAE(adata, n_clusters="auto", max_clusters=1)


def test_a_recut_writes_where_the_clusters_were_written_and_is_saved(tmp_path):
    adata = synthetic_counts(n_cells=200, n_genes=40, n_clusters=3, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=4, n_latent=3, n_hidden=16)
    model.train(max_epochs=5, key_added="run1", **QUIET)
    model.select_clusters(2)
    assert adata.obs["run1_cluster"].nunique() <= 2 and "scvae_cluster" not in adata.obs
    assert adata.obsm["run1_cluster_probabilities"].shape == (adata.n_obs, 2)
    model.save(tmp_path / "model")
    loaded = scvae.GMVAE.load(tmp_path / "model", adata=adata)
    assert loaded.key_added_ == "run1"
    loaded.select_clusters(3, key_added="fine")
    assert loaded.key_added_ == "fine" and "fine_cluster" in adata.obs
    loaded.annotate(key_added="again")  # annotating its own AnnData counts as writing there
    loaded.select_clusters(2)
    assert adata.obsm["again_cluster_probabilities"].shape == (adata.n_obs, 2)
    loaded.annotate(adata.copy(), key_added="elsewhere")  # another AnnData does not
    assert loaded.key_added_ == "again"


def test_select_clusters_keeps_off_the_registered_columns():
    adata = synthetic_counts(n_cells=120, n_genes=20, n_clusters=2, seed=0)
    adata.obs["old_cluster"] = adata.obs["cell_type"]
    scvae.setup_anndata(adata, labels_key="old_cluster")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=2, n_hidden=8)
    model.train(max_epochs=2, key_added="new", **QUIET)
    labels, clusters = adata.obs["old_cluster"].copy(), model.n_clusters
    with pytest.raises(ValueError, match="labels_key"):
        model.select_clusters(2, key_added="old")  # would write obs["old_cluster"]
    assert adata.obs["old_cluster"].equals(labels) and model.n_clusters == clusters
