"""The scvae commands at work: train and evaluate round trips, what train writes and
prints, what evaluate scores, and the demo."""

import json
import os
from pathlib import Path

import anndata as ad
import matplotlib
import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

matplotlib.use("Agg")

import scvae
from scvae.cli import main
from scvae.datasets import synthetic_counts
from tests.helpers import FAST


def test_train_evaluate_round_trip(counts_file, tmp_path, capsys):
    before = counts_file.read_bytes()
    out, model_dir = tmp_path / "out.h5ad", tmp_path / "model"
    args = ["train", str(counts_file), "-o", str(out), "--model", "gmvae", "--n-clusters", "3"]
    assert main([*args, *FAST, "--save-model", str(model_dir)]) == 0
    assert counts_file.read_bytes() == before
    result = ad.read_h5ad(out)
    assert result.obsm["X_scvae"].shape == (150, 4)
    for key in ("scvae_cluster", "scvae_cluster_confidence", "cell_type"):
        assert key in result.obs
    assert result.obsm["scvae_cluster_probabilities"].shape == (150, 3)
    assert not [k for k in [*result.uns, *result.obs] if k.startswith("_scvi")]
    capsys.readouterr()

    evaluate = ["evaluate", str(model_dir), str(out), "--n-mc-samples", "3"]
    assert main([*evaluate, "--labels-key", "cell_type"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model"] == "GMVAE" and metrics["n_cells"] == 150
    assert metrics["elbo"] <= metrics["log_likelihood"] + 1.0
    # The clusters scored are the saved model's on these cells, against their labels.
    model = scvae.tl.load_model(model_dir, ad.read_h5ad(out))
    labels, clusters = result.obs["cell_type"].to_numpy(), model.predict()
    assert metrics["ari"] == pytest.approx(adjusted_rand_score(labels, clusters))
    assert metrics["nmi"] == pytest.approx(normalized_mutual_info_score(labels, clusters))
    assert metrics["ari"] != pytest.approx(metrics["nmi"])  # so that a swap would show

    # The saved model directory is not replaced without --overwrite.
    assert main([*args, *FAST, "--save-model", str(model_dir), "--overwrite"]) == 0
    assert (
        main(
            [
                "train",
                str(counts_file),
                "-o",
                str(tmp_path / "b.h5ad"),
                "--save-model",
                str(model_dir),
                *FAST,
            ]
        )
        == 2
    )
    assert "--overwrite" in capsys.readouterr().err


def test_train_vae_then_evaluate_detects_the_class(counts_file, tmp_path, capsys):
    out, model_dir = tmp_path / "out.h5ad", tmp_path / "vae"
    args = ["train", str(counts_file), "-o", str(out), "--likelihood", "poisson"]
    assert main([*args, "--layer", "counts", "--save-model", str(model_dir), *FAST]) == 0
    assert "scvae_cluster" not in ad.read_h5ad(out).obs
    # The model saved is the Poisson VAE asked for on the command line.
    model = scvae.tl.load_model(model_dir, ad.read_h5ad(counts_file))
    assert type(model) is scvae.VAE
    assert model.init_params_["non_kwargs"]["likelihood"] == "poisson"
    assert model.module.decoder.likelihood.name == "poisson"
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), str(counts_file), "--n-mc-samples", "2"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model"] == "VAE" and "ari" not in metrics


@pytest.mark.parametrize("placement", ["none", "encoder", "both"])
def test_train_places_batch_normalisation_where_asked(counts_file, tmp_path, placement):
    out, model_dir = tmp_path / "out.h5ad", tmp_path / "model"
    args = ["train", str(counts_file), "-o", str(out), "--save-model", str(model_dir), *FAST]
    if placement != "encoder":  # the default
        args += ["--batch-norm", placement]
    assert main(args) == 0
    module = scvae.tl.load_model(model_dir, ad.read_h5ad(out)).module

    def normalised(network):
        return any(isinstance(layer, torch.nn.BatchNorm1d) for layer in network.modules())

    assert normalised(module.encoder) == (placement in ("encoder", "both"))
    assert normalised(module.decoder) == (placement == "both")


def test_train_prints_a_json_summary_with_the_restarts_agreement(counts_file, tmp_path, capsys):
    out = tmp_path / "out.h5ad"
    args = ["train", str(counts_file), "-o", str(out), "--model", "gmvae", "--n-clusters", "3"]
    assert main([*args, "--n-restarts", "2", *FAST]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["output"] == str(out) and summary["model"] == "GMVAE"
    assert summary["n_cells"] == 150 and summary["epochs"] == 2 and summary["n_clusters"] == 3
    # With two restarts, each one's agreement is the other's: one value, twice.
    assert len(set(summary["restart_agreements"])) == 1
    assert len(summary["restart_agreements"]) == len(summary["restart_elbos"]) == 2
    assert f"wrote {out}" in captured.err
    assert "scvae_cluster" in ad.read_h5ad(out).obs


def test_train_lets_the_gmvae_choose_the_number_of_clusters(counts_file, tmp_path, capsys):
    out = tmp_path / "out.h5ad"
    args = ["train", str(counts_file), "-o", str(out), "--model", "gmvae", "--n-clusters", "auto"]
    assert main([*args, *FAST]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_components"] == 30
    clusters = ad.read_h5ad(out).obs["scvae_cluster"]
    assert 1 <= summary["n_clusters"] == clusters.astype(int).max() + 1 <= 30


def test_train_cuts_the_clusters_at_the_separability_asked_for(counts_file, tmp_path, capsys):
    out = tmp_path / "out.h5ad"
    args = ["train", str(counts_file), "-o", str(out), "--model", "gmvae", "--n-clusters", "4"]
    assert main([*args, "--separability", "1", *FAST]) == 0
    summary = json.loads(capsys.readouterr().out)
    # Nothing is 100% separable (Laplace's estimate stays below 1): one cluster is left.
    assert summary["n_clusters"] == 1 and summary["n_components"] == 4
    assert ad.read_h5ad(out).obs["scvae_cluster"].nunique() == 1


def test_the_output_file_has_the_usual_mode_or_keeps_the_one_it_replaces(counts_file, tmp_path):
    out = tmp_path / "o.h5ad"
    umask = os.umask(0o022)
    try:
        assert main(["train", str(counts_file), "-o", str(out), *FAST]) == 0
        assert out.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
        out.chmod(0o664)
        assert main(["train", str(counts_file), "-o", str(out), "--overwrite", *FAST]) == 0
        assert out.stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(umask)


def test_an_existing_model_directory_needs_no_writable_parent(counts_file, tmp_path, monkeypatch):
    model_dir = tmp_path / "models" / "m"
    model_dir.mkdir(parents=True)
    access = os.access
    monkeypatch.setattr(  # the parent read-only (root ignores permissions, so pretend)
        scvae.cli.os,
        "access",
        lambda path, mode: Path(path) != model_dir.parent and access(path, mode),
    )
    args = ["train", str(counts_file), "-o", str(tmp_path / "o.h5ad"), *FAST]
    assert main([*args, "--save-model", str(model_dir), "--overwrite"]) == 0
    assert (model_dir / "model.pt").is_file()


def test_train_creates_missing_folders_only_when_it_writes(counts_file, tmp_path, monkeypatch):
    output, model_dir = tmp_path / "runs" / "a" / "o.h5ad", tmp_path / "models" / "b" / "m"
    args = ["train", str(counts_file), "-o", str(output), "--save-model", str(model_dir)]
    assert main([*args, "--layer", "nope", *FAST]) == 2  # refused: nothing is created
    assert sorted(tmp_path.iterdir()) == [counts_file]
    read_only = tmp_path / "models"  # the nearest folder that exists must be writable
    read_only.mkdir()
    access = os.access
    monkeypatch.setattr(  # root ignores permissions, so pretend
        scvae.cli.os, "access", lambda path, mode: Path(path) != read_only and access(path, mode)
    )
    assert main([*args, *FAST]) == 2
    assert sorted(tmp_path.iterdir()) == [counts_file, read_only]
    monkeypatch.setattr(scvae.cli.os, "access", access)
    assert main([*args, *FAST]) == 0
    assert output.is_file() and (model_dir / "model.pt").is_file()


def test_evaluate_takes_the_models_genes_of_a_wider_query_and_refuses_no_cells(
    saved_gmvae, tmp_path, capsys
):
    model_dir, path = saved_gmvae
    adata = ad.read_h5ad(path)
    extra = ad.AnnData(np.ones((adata.n_obs, 2), dtype=np.float32), obs=adata.obs)
    extra.var_names = ["extra_0", "extra_1"]
    wider = ad.concat([extra, adata], axis=1, merge="same")[:, ::-1]  # other order too
    wider.write_h5ad(tmp_path / "wider.h5ad")
    assert (
        main(["evaluate", str(model_dir), str(tmp_path / "wider.h5ad"), "--n-mc-samples", "2"]) == 0
    )
    assert "evaluating the model's 40 genes of the 42" in capsys.readouterr().err
    adata[:0].copy().write_h5ad(tmp_path / "empty.h5ad")
    assert main(["evaluate", str(model_dir), str(tmp_path / "empty.h5ad")]) == 2
    assert "has no cells to evaluate" in capsys.readouterr().err


def test_evaluate_gives_the_same_numbers_for_the_same_seed(saved_gmvae, capsys):
    model_dir, path = saved_gmvae
    runs = []
    for seed in ([], [], ["--seed", "0"], ["--seed", "1"]):
        args = ["evaluate", str(model_dir), str(path), "--n-mc-samples", "3", *seed]
        assert main(args) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1] == runs[2]
    assert runs[3]["log_likelihood"] != runs[0]["log_likelihood"]


def test_demo_on_a_tiny_data_set(tmp_path, monkeypatch, capsys):
    def tiny_paul15():
        adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
        adata.obs["label"] = adata.obs["cell_type"]
        return adata

    monkeypatch.setattr(scvae.datasets, "paul15", tiny_paul15)
    out = tmp_path / "demo"
    out.mkdir()  # a directory that exists: the demo writes into it
    args = ["-o", str(out), "--max-epochs", "1", "--n-clusters", "3", "--n-genes", "30"]
    assert main(["demo", *args, "--no-progress-bar"]) == 0
    for name in ("paul15_scvae.h5ad", "umap.png", "training_curves.png", "metrics.json"):
        assert (out / name).stat().st_size > 100
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_genes"] == 30 and metrics["n_train"] == 135 and metrics["n_heldout"] == 15
    assert {"ari", "nmi", "heldout_elbo", "heldout_log_likelihood"} <= set(metrics)
    assert "X_umap" in ad.read_h5ad(out / "paul15_scvae.h5ad").obsm
    # Stopped while it writes its h5ad: the earlier run's files are whole, and no other is left.
    before = {name: (out / name).read_bytes() for name in ("paul15_scvae.h5ad", "metrics.json")}

    def killed(self, path, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ad.AnnData, "write_h5ad", killed)
    assert main(["demo", *args, "--no-progress-bar"]) == 130
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(path.name for path in out.iterdir()) == [
        "metrics.json",
        "paul15_scvae.h5ad",
        "training_curves.png",
        "umap.png",
    ]


def test_demo_drops_the_cells_left_without_counts(tmp_path, monkeypatch, capsys):
    paul15 = scvae.datasets.paul15()[:150].copy()
    kept = scvae.tl.select_variable_genes(paul15, 20)
    n_empty = int((np.asarray(kept.X.sum(axis=1)).ravel() == 0).sum())
    assert n_empty > 0
    monkeypatch.setattr(scvae.datasets, "paul15", paul15.copy)
    out = tmp_path / "demo"
    args = ["-o", str(out), "--max-epochs", "1", "--n-clusters", "auto", "--n-genes", "20"]
    assert main(["demo", *args, "--no-progress-bar"]) == 0
    captured = capsys.readouterr()
    assert f"dropped {n_empty} cells without counts" in captured.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_cells_dropped"] == n_empty and metrics["n_cells"] == 150 - n_empty
    assert json.loads(captured.out) == metrics
    # With n_clusters 'auto', the metrics give the number of clusters the model chose.
    assert isinstance(metrics["n_clusters"], int) and metrics["n_clusters"] >= 1
    assert ad.read_h5ad(out / "paul15_scvae.h5ad").n_obs == 150 - n_empty
