"""The scvae command line: train/evaluate round trip, demo, help and errors."""

import json

import anndata as ad
import matplotlib
import pytest

matplotlib.use("Agg")

import scvae
from scvae.cli import main
from scvae.datasets import synthetic_counts

FAST = ["--max-epochs", "2", "--no-progress-bar", "--n-latent", "4"]


@pytest.fixture
def counts_file(tmp_path):
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    return path


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["demo"]])
def test_help_exits_zero(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "usage: scvae" in capsys.readouterr().out


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
    assert metrics["log_likelihood"] < 0 and metrics["elbo"] < 0
    assert 0 <= metrics["nmi"] <= 1 and -1 <= metrics["ari"] <= 1

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
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), str(counts_file), "--n-mc-samples", "2"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model"] == "VAE" and "ari" not in metrics


def test_train_gmvae_with_restarts_reports_their_agreement(counts_file, tmp_path, capsys):
    out = tmp_path / "out.h5ad"
    args = ["train", str(counts_file), "-o", str(out), "--model", "gmvae", "--n-clusters", "3"]
    assert main([*args, "--n-restarts", "2", *FAST]) == 0
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("restarts' mean ARI"))
    agreements = line.split(": ")[1].split(" (")[0].split(", ")
    assert len(agreements) == 2  # one per restart
    assert all(-1 <= float(value) <= 1 for value in agreements)
    assert "scvae_cluster" in ad.read_h5ad(out).obs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing.h5ad", "-o", "x.h5ad"], "no such file"),
        (["train", "{in}", "-o", "{in}"], "overwrite the input"),
        (["train", "{in}", "-o", "x.h5ad", "--n-clusters", "3"], "--model gmvae"),
        (["train", "{in}", "-o", "x.h5ad", "--n-restarts", "2"], "--model gmvae"),
        (["train", "{in}", "-o", "x.h5ad", "--model", "gmvae", "--n-restarts", "0"], "at least 1"),
        (["train", "{in}", "-o", "x.h5ad", "--layer", "nope", *FAST], "nope"),
        (["train", "{in}", "-o", "x.h5ad", "--likelihood", "gamma"], "invalid choice"),
        (["train", "{in}"], "required"),
        (["evaluate", "no_model", "{in}"], "no such model directory"),
        (["evaluate", "no_model", "{in}", "--labels-key", "nope"], "nope"),
    ],
)
def test_errors_exit_two_without_traceback(args, message, counts_file, capsys, monkeypatch):
    monkeypatch.chdir(counts_file.parent)
    assert main([a.format(**{"in": counts_file}) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_demo_on_a_tiny_data_set(tmp_path, monkeypatch, capsys):
    def tiny_paul15():
        adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
        adata.obs["label"] = adata.obs["cell_type"]
        return adata

    monkeypatch.setattr(scvae.datasets, "paul15", tiny_paul15)
    out = tmp_path / "demo"
    args = ["-o", str(out), "--max-epochs", "1", "--n-clusters", "3", "--n-genes", "30"]
    assert main(["demo", *args, "--no-progress-bar"]) == 0
    for name in ("paul15_scvae.h5ad", "umap.png", "training_curves.png", "metrics.json"):
        assert (out / name).stat().st_size > 100
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_genes"] == 30 and metrics["n_train"] == 135 and metrics["n_heldout"] == 15
    assert {"ari", "nmi", "heldout_elbo", "heldout_log_likelihood"} <= set(metrics)
    assert "X_umap" in ad.read_h5ad(out / "paul15_scvae.h5ad").obsm
