"""Edge shapes, saved models and reproducibility: clear errors or correct results, never junk."""

import warnings
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
import scvi
import torch

import scvae
from scvae.data import InvalidCountsError
from scvae.datasets import synthetic_counts
from scvae.model import GeneMismatchError, SavedModelError
from tests.helpers import QUIET


def _trained(adata, model_cls=scvae.VAE, epochs=1, **kwargs):
    scvae.setup_anndata(adata)
    model = model_cls(adata, n_hidden=8, **kwargs)
    model.train(max_epochs=epochs, **QUIET)
    return model


@pytest.mark.parametrize(
    ("model_cls", "kwargs"), [(scvae.VAE, {}), (scvae.GMVAE, {"n_clusters": 1})]
)
@pytest.mark.parametrize("n_cells", [1, 2])
def test_too_few_cells_are_refused_with_the_reason(n_cells, model_cls, kwargs):
    with pytest.raises(ValueError, match=f"at least 3 cells, the AnnData has {n_cells}"):
        _trained(synthetic_counts(n_cells, 20), model_cls, **kwargs)


def test_three_cells_train():
    assert _trained(synthetic_counts(3, 20)).get_latent_representation().shape == (3, 10)


def test_one_gene_trains():
    assert _trained(synthetic_counts(50, 1)).get_latent_representation().shape == (50, 10)


def test_as_many_components_as_cells_train_and_more_are_refused():
    adata = synthetic_counts(6, 20)
    model = _trained(adata, scvae.GMVAE, epochs=3, n_clusters=6)
    assert adata.obsm["scvae_cluster_probabilities"].shape == (6, 6)
    assert model.get_cluster_profiles().shape == (6, 20)
    with pytest.raises(ValueError, match="n_clusters=7 is more than the 6 training cells"):
        _trained(adata, scvae.GMVAE, epochs=3, n_clusters=7)
    # 20 cells, 18 of them for training (train_size=0.9): 19 clusters cannot all have cells.
    with pytest.raises(ValueError, match="n_clusters=19 is more than the 18 training cells"):
        _trained(synthetic_counts(20, 20), scvae.GMVAE, n_clusters=19)


@pytest.mark.parametrize(
    ("train_size", "message"),
    [(0.0, r"in \(0, 1\]; got 0.0"), (1.5, "got 1.5"), (0.005, "leaves 1 of the 200 cells")],
)
def test_a_split_that_cannot_train_is_refused_before_training(train_size, message):
    adata = synthetic_counts(200, 20)
    scvae.setup_anndata(adata)
    for model in (scvae.VAE(adata), scvae.GMVAE(adata, n_clusters=2)):
        with pytest.raises(ValueError, match=message):
            model.train(max_epochs=1, train_size=train_size, **QUIET)
        assert not model.is_trained_


def test_a_batch_with_a_single_cell():
    adata = synthetic_counts(60, 20)
    adata.obs["batch"] = ["b0"] * 59 + ["b1"]
    scvae.setup_anndata(adata, batch_key="batch")
    scvae.GMVAE(adata, n_clusters=3, n_hidden=8).train(max_epochs=2, **QUIET)
    assert np.isfinite(adata.obsm["X_scvae"]).all()


@pytest.mark.parametrize("likelihood", ["poisson", "nb", "zip", "zinb", "constrained_poisson"])
def test_all_zero_genes_and_a_count_of_a_million(likelihood):
    adata = synthetic_counts(60, 20)
    counts = adata.X.toarray()
    counts[:, :3] = 0
    counts[0, 5] = 1e6
    adata.X = sp.csr_matrix(counts)
    model = _trained(adata, epochs=2, likelihood=likelihood)
    assert np.isfinite(model.get_elbo())


@pytest.mark.parametrize("likelihood", ["nb", "poisson", "zinb"])
@pytest.mark.parametrize(
    ("model_cls", "kwargs"), [(scvae.VAE, {}), (scvae.GMVAE, {"n_clusters": 3})]
)
def test_mixed_precision_trains_with_the_likelihood_in_float32(likelihood, model_cls, kwargs):
    adata = synthetic_counts(n_cells=120, n_genes=20, seed=0)
    scvae.setup_anndata(adata)
    model = model_cls(adata, n_hidden=8, likelihood=likelihood, **kwargs)
    model.train(max_epochs=2, precision="bf16-mixed", **QUIET)
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()
    tensors = {"X": torch.as_tensor(adata.X[:8].toarray()), "batch": torch.zeros(8, 1)}
    tensors["labels"] = torch.zeros(8, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, generative = model.module.forward(tensors, compute_loss=False)
    parameters = generative["px"].likelihood_parameters()
    assert all(value.dtype == torch.float32 for value in parameters.values())


def test_same_seed_same_latents_and_clusters_on_cpu():
    results = []
    for _ in range(2):
        adata = synthetic_counts(200, 30)
        scvi.settings.seed = 3
        _trained(adata, scvae.GMVAE, epochs=3, n_clusters=3)
        results.append((adata.obsm["X_scvae"], adata.obs["scvae_cluster"]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_loading_against_reordered_or_missing_genes_fails_clearly(adata, tmp_path):
    _trained(adata).save(tmp_path / "model")
    reordered = adata[:, ::-1].copy()
    with pytest.raises(GeneMismatchError, match=r"different order.*scvae\.tl\.saved_genes\(DIR\)"):
        scvae.VAE.load(tmp_path / "model", adata=reordered)
    # The fix the message gives loads the model.
    fixed = reordered[:, scvae.tl.saved_genes(tmp_path / "model")].copy()
    assert scvae.VAE.load(tmp_path / "model", adata=fixed).adata is fixed
    with pytest.raises(GeneMismatchError, match=r"lacks 10 of the model's 60 genes.*train a"):
        scvae.VAE.load(tmp_path / "model", adata=adata[:, 10:].copy())
    with pytest.raises(TypeError, match=r"adata must be an AnnData.*got bool"):
        scvae.VAE.load(tmp_path / "model", adata=False)


def test_saving_never_overwrites_unless_asked(adata, tmp_path):
    model = _trained(adata)
    model.save(tmp_path / "model")
    with pytest.raises(ValueError, match="already exists"):
        model.save(tmp_path / "model")
    model.save(tmp_path / "model", overwrite=True)


def test_a_model_saved_over_another_is_not_loaded_with_the_others_cells(adata, tmp_path):
    _trained(adata).save(tmp_path / "model", save_anndata=True)
    fewer = adata[:40].copy()
    _trained(fewer).save(tmp_path / "model", overwrite=True)  # without its AnnData
    with pytest.raises(ValueError, match=r"saved without its AnnData.*adata="):
        scvae.VAE.load(tmp_path / "model")
    assert scvae.VAE.load(tmp_path / "model", adata=fewer).adata.n_obs == 40


def test_saving_removes_no_file_of_the_user(adata, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    synthetic_counts(30, 50).write_h5ad(project / "adata.h5ad")  # the user's own data
    model = _trained(adata)
    model.save(project, overwrite=True)
    assert sorted(path.name for path in project.iterdir()) == ["adata.h5ad", "model.pt"]
    with pytest.raises(ValueError, match="saved without its AnnData"):
        scvae.VAE.load(project)  # the user's file is not the model's AnnData


def test_a_save_that_fails_leaves_the_saved_model_whole(adata, tmp_path):
    first = _trained(adata)
    first.save(tmp_path / "model", save_anndata=True)
    other = synthetic_counts(60, 50, seed=1)
    second = _trained(other, n_latent=4)
    other.uns["state"] = object()  # h5py cannot write it
    with pytest.raises(Exception, match="No method registered for writing"):
        second.save(tmp_path / "model", overwrite=True, save_anndata=True)
    loaded = scvae.VAE.load(tmp_path / "model")
    assert (loaded.adata.n_obs, loaded.module.n_latent) == (adata.n_obs, 10)
    np.testing.assert_allclose(
        loaded.get_latent_representation(), first.get_latent_representation(), atol=1e-6
    )
    assert sorted(path.name for path in (tmp_path / "model").iterdir()) == [
        "adata.h5ad",
        "model.pt",
    ]  # no staging left behind
    with pytest.raises(Exception, match="No method registered for writing"):
        second.save(tmp_path / "new", save_anndata=True)
    assert not (tmp_path / "new").exists()  # a directory the failed save created is gone
    with pytest.raises(Exception, match="No method registered for writing"):
        second.save(tmp_path / "deeper" / "new", save_anndata=True)
    assert not (tmp_path / "deeper").exists()  # and its parents


def test_a_model_whose_counts_changed_in_place_is_not_saved_over_a_good_one(adata, tmp_path):
    """Genes filtered in place after setup: the model's weights are for the genes it was
    set up with, so a save would write genes it cannot be loaded with."""
    model = _trained(adata)
    model.save(tmp_path / "model")
    adata._inplace_subset_var(np.arange(adata.n_vars - 10))  # as sc.pp.filter_genes does
    with pytest.raises(ValueError, match="genes were removed or added in place"):
        model.save(tmp_path / "model", overwrite=True)
    with pytest.raises(ValueError, match="genes were removed or added in place"):
        model.get_latent_representation()  # as every query
    assert len(scvae.tl.saved_genes(tmp_path / "model")) == adata.n_vars + 10


def test_a_model_saves_without_its_data_after_the_counts_were_normalised_in_place(adata, tmp_path):
    """Saving the model alone reads the genes, not the counts: the usual scanpy steps on
    counts kept in X leave it possible; saving the counts with it is refused."""
    model = _trained(adata)
    adata.X = adata.X / 2.0  # as sc.pp.normalize_total does in place
    model.save(tmp_path / "model")
    assert list(scvae.tl.saved_genes(tmp_path / "model")) == list(adata.var_names)
    with pytest.raises(ValueError, match=r"changed after scvae\.setup_anndata"):
        model.save(tmp_path / "with_data", save_anndata=True)


def test_a_model_saved_with_a_prefix_is_named_when_the_prefix_is_forgotten(adata, tmp_path):
    _trained(adata).save(tmp_path, prefix="run1_", overwrite=True)
    with pytest.raises(SavedModelError, match=r"prefix=\['run1_'\]"):
        scvae.VAE.load(tmp_path, adata=adata)


def test_loading_onto_registered_cells_keeps_the_users_setup(tmp_path):
    other = synthetic_counts(100, 30, seed=1)
    scvae.setup_anndata(other)
    _trained(other).save(tmp_path / "model")  # set up without batches
    adata = synthetic_counts(100, 30, n_batches=2)
    scvae.setup_anndata(adata, batch_key="batch")
    live = scvae.VAE(adata, n_hidden=8)
    scvae.VAE.load(tmp_path / "model", adata=adata)  # registers adata with its own setup
    assert scvae.VAE(adata).summary_stats.n_batch == 2
    seen = []
    forward = live.module.forward

    def spy(tensors, *args, **kwargs):
        seen.append(tensors[scvi.REGISTRY_KEYS.BATCH_KEY].unique().numel())
        return forward(tensors, *args, **kwargs)

    live.module.forward = spy
    live.train(max_epochs=1, annotate=False, **QUIET)
    assert seen[0] == 2  # the live model trains on its own batches


def test_truncated_foreign_or_missing_model_files_fail_clearly(adata, tmp_path):
    _trained(adata).save(tmp_path / "model")
    model_file = tmp_path / "model" / "model.pt"
    model_file.write_bytes(model_file.read_bytes()[:100])
    with pytest.raises(SavedModelError, match="truncated"):
        scvae.VAE.load(tmp_path / "model", adata=adata)
    model_file.write_text("not a model")
    with pytest.raises(SavedModelError, match="not a readable scvae model"):
        scvae.VAE.load(tmp_path / "model", adata=adata)
    with pytest.raises(SavedModelError, match="No saved model"):
        scvae.VAE.load(tmp_path / "elsewhere", adata=adata)


def test_a_model_loaded_with_another_class_names_its_class(adata, tmp_path, capsys):
    _trained(adata).save(tmp_path / "model")
    with pytest.raises(SavedModelError, match="holds a VAE model, not a GMVAE"):
        scvae.GMVAE.load(tmp_path / "model", adata=adata)
    scvae.VAE.load(tmp_path / "model", adata=adata)
    assert "already downloaded" not in capsys.readouterr().out  # scvi-tools' INFO line


def test_cells_of_a_query_are_chosen_by_position_or_mask_and_nothing_else(adata):
    model = _trained(adata, scvae.GMVAE, n_clusters=3)
    latent = model.get_latent_representation()
    mask = np.arange(adata.n_obs) % 3 == 0
    np.testing.assert_allclose(model.get_latent_representation(indices=mask), latent[mask])
    np.testing.assert_allclose(model.get_latent_representation(indices=[-1, 0]), latent[[-1, 0]])
    queries = [
        model.get_latent_representation,
        model.predict,
        model.get_elbo,
        model.get_normalized_expression,
    ]
    for query in queries:
        with pytest.raises(ValueError, match="selects no cells"):
            query(indices=[])
        with pytest.raises(ValueError, match=r"indices=5 is a single position: pass a list, \[5\]"):
            query(indices=5)
        with pytest.raises(ValueError, match=f"needs {adata.n_obs} values"):
            query(indices=mask[:-1])
        with pytest.raises(IndexError, match=f"outside the AnnData's {adata.n_obs} cells"):
            query(indices=[0, adata.n_obs])
        with pytest.raises(TypeError, match=r"obs_names\.isin"):
            query(indices=adata.obs_names[:2])


def test_a_query_with_other_genes_is_refused_before_inference(adata):
    model = _trained(adata)
    query = synthetic_counts(20, 50)
    with pytest.raises(GeneMismatchError):
        model.annotate(query)
    assert "X_scvae" not in query.obsm


def test_a_copy_of_the_training_data_with_other_genes_is_refused(adata):
    model = _trained(adata)
    for query in (adata[:, ::-1].copy(), adata[:, ::-1], adata[:, 10:].copy()):
        with pytest.raises(GeneMismatchError):  # a copy keeps the registration's identity
            model.get_latent_representation(query)
    renamed = adata.copy()
    del renamed.obsm["X_scvae"]
    renamed.var_names = [f"other_{name}" for name in adata.var_names]
    with pytest.raises(GeneMismatchError, match=r"None of the model's 60 genes.*identifier"):
        model.annotate(renamed)
    assert "X_scvae" not in renamed.obsm


def test_a_query_from_an_unknown_batch_is_refused_with_the_known_ones(tmp_path):
    adata = synthetic_counts(n_cells=100, n_genes=20, n_clusters=2, n_batches=2, seed=0)
    scvae.setup_anndata(adata, batch_key="batch")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    query = synthetic_counts(n_cells=30, n_genes=20, n_clusters=2, n_batches=3, seed=1)
    with pytest.raises(ValueError, match=r"not trained on: \['batch_2'\].*'batch_1'.*\.isin"):
        model.annotate(query)
    assert "X_scvae" not in query.obsm
    model.save(tmp_path / "model")
    with pytest.raises(ValueError, match=r"not trained on: \['batch_2'\]"):
        scvae.VAE.load(tmp_path / "model", adata=query)
    relabelled = adata.copy()  # a copy of the training data: its identity is kept
    relabelled.obs["batch"] = relabelled.obs["batch"].cat.rename_categories(["batch_0", "b9"])
    with pytest.raises(ValueError, match=r"not trained on: \['b9'\]"):
        model.annotate(relabelled)
    known = query[query.obs["batch"] != "batch_2"].copy()
    model.annotate(known)
    assert known.obsm["X_scvae"].shape == (known.n_obs, 2)


def test_batches_stored_as_another_type_are_refused_with_the_conversion():
    adata = synthetic_counts(n_cells=60, n_genes=20, seed=0)
    adata.obs["run"] = np.tile([0, 1], 30)  # integer batch codes
    scvae.setup_anndata(adata, batch_key="run")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    query = adata[:10].copy()
    del query.uns["_scvi_uuid"]  # a new AnnData, as read from a file
    query.obs["run"] = query.obs["run"].astype(str)
    message = r"as str \(\['0', '1'\]\), the model as int.*astype\(int\)"
    with pytest.raises(ValueError, match=message):
        model.annotate(query)
    query.obs["run"] = query.obs["run"].astype(int)
    model.annotate(query)
    assert query.obsm["X_scvae"].shape == (10, 2)


def test_a_model_saved_on_a_gpu_loads_on_a_cpu(adata, tmp_path):
    model = _trained(adata)
    # Tag every saved tensor as CUDA memory, as a model saved on a GPU is.
    with mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        model.save(tmp_path / "gpu_model")
    if not torch.cuda.is_available():  # the file really asks for a GPU, which is not there
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tmp_path / "gpu_model" / "model.pt", weights_only=False)
    loaded = scvae.VAE.load(tmp_path / "gpu_model", adata=adata, accelerator="cpu")
    assert loaded.device.type == "cpu"
    np.testing.assert_allclose(
        model.get_latent_representation(), loaded.get_latent_representation(), atol=1e-5
    )


def test_non_integer_counts_are_refused_by_the_piecewise_likelihood(adata):
    adata.X = adata.X * 0.5
    scvae.setup_anndata(adata, allow_non_integer=True)
    scvae.VAE(adata, likelihood="nb")  # fine for the likelihoods defined on reals
    with pytest.raises(InvalidCountsError, match="piecewise_cutoff=3 needs integer") as error:
        scvae.VAE(adata, likelihood="nb", piecewise_cutoff=3)
    assert "allow_non_integer" not in str(error.value)  # already given: no advice to give it
    adata.layers["counts"] = adata.X.copy()  # the same, registered from a layer
    adata.X = np.round(adata.X)
    scvae.setup_anndata(adata, layer="counts", allow_non_integer=True)
    with pytest.raises(InvalidCountsError, match=r"non-integer"):
        scvae.VAE(adata, likelihood="nb", piecewise_cutoff=3)


def test_a_query_of_an_untrained_model_warns(adata):
    """Its answers come from the random initial weights; latent and cluster queries refuse."""
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    with pytest.warns(UserWarning, match="untrained model"):
        model.get_elbo()
    with pytest.warns(UserWarning, match="untrained model"):
        model.get_normalized_expression()
    model.train(max_epochs=1, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.get_elbo()
