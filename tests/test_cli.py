"""The scvae command line: train/evaluate round trip, demo, help and errors."""

import inspect
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import matplotlib
import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

matplotlib.use("Agg")

import scvae
from scvae._cli_options import BATCH_NORM_PLACES as CLI_BATCH_NORM_PLACES
from scvae._cli_options import GMVAE_DEFAULT_CLUSTERS, LIKELIHOOD_NAMES
from scvae.cli import main
from scvae.datasets import synthetic_counts
from scvae.distributions import LIKELIHOODS
from scvae.model import SEPARABILITY_THRESHOLD
from scvae.module._networks import BATCH_NORM_PLACES
from scvae.tl._demo import DEMO_N_CLUSTERS, DEMO_N_GENES

FAST = ["--max-epochs", "2", "--no-progress-bar", "--n-latent", "4"]


@pytest.fixture
def counts_file(tmp_path):
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def saved_gmvae(tmp_path_factory):
    """A 3-cluster GMVAE trained by ``scvae train --save-model`` on 150 cells, and the h5ad."""
    directory = tmp_path_factory.mktemp("saved_gmvae")
    path = directory / "in.h5ad"
    synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0).write_h5ad(path)
    args = ["train", str(path), "-o", str(directory / "out.h5ad"), "--model", "gmvae"]
    assert main([*args, "--n-clusters", "3", *FAST, "--save-model", str(directory / "m")]) == 0
    return directory / "m", path


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["demo"]])
def test_help_exits_zero(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "usage: scvae" in capsys.readouterr().out


def test_demo_help_shows_percentages(capsys):
    assert main(["demo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "on 90% of the 2730 cells" in out and "the other 10%;" in out and "%%" not in out


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


def test_train_refuses_an_unknown_batch_norm_placement(counts_file, tmp_path, capsys):
    args = ["train", str(counts_file), "-o", str(tmp_path / "out.h5ad"), "--batch-norm", "yes"]
    assert main(args) == 2
    assert "--batch-norm: invalid choice: 'yes'" in capsys.readouterr().err
    assert not (tmp_path / "out.h5ad").exists()


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing.h5ad", "-o", "x.h5ad"], "no such file"),
        (["train", "{in}", "-o", "{in}"], "overwrite the input"),
        (["train", "{in}", "-o", "x.h5ad", "--n-clusters", "3"], "--model gmvae"),
        (["train", "{in}", "-o", "x.h5ad", "--n-clusters", "0"], "positive integer or 'auto'"),
        (["train", "{in}", "-o", "x.h5ad", "--n-restarts", "2"], "--model gmvae"),
        (["train", "{in}", "-o", "x.h5ad", "--separability", "0.9"], "--model gmvae"),
        (["train", "{in}", "-o", "x.h5ad", "--model", "gmvae", "--separability", "2"], "(0, 1]"),
        (["train", "{in}", "-o", "x.h5ad", "--model", "gmvae", "--n-restarts", "0"], "at least 1"),
        (["train", "{in}", "-o", "x.h5ad", "--layer", "nope", *FAST], "nope"),
        (["train", "{in}", "-o", "x.h5ad", "--likelihood", "gamma"], "invalid choice"),
        (["train", "{in}", "-o", "no_dir/x.h5ad"], "does not exist"),
        (["train", "{in}", "-o", "x.h5ad", "--save-model", "no_dir/model"], "does not exist"),
        (["train", "{in}"], "required"),
        (["train", "{in}", "-o", ".", "--overwrite"], "is a directory"),
        (["train", "{in}", "-o", "x.h5ad", "--save-model", "x.h5ad"], "the same path"),
        (["train", "{in}", "-o", "x.h5ad", "--max-epochs", "0"], "--max-epochs must be a positive"),
        (["train", "{in}", "-o", "."], "is a directory; give the path of an .h5ad"),
        (["train", "{in}", "-o", "out.csv"], "-o out.csv is written as an AnnData: give it the"),
        (["train", ".", "-o", "x.h5ad"], ". is a directory; give the path of an .h5ad"),
        (["train", "ten_x.h5", "-o", "x.h5ad", *FAST], "scanpy.read_10x_h5(path)"),
        (["train", "{in}", "-o", "x.h5ad", "--seed", "-1"], "from 0 to 4294967295, got '-1'"),
        (
            ["train", "{in}", "-o", "x.h5ad", "--model", "gmvae", "--n-clusters", "500", *FAST],
            "--n-clusters 500 is more than the 135 training cells",
        ),
        (["evaluate", "no_model", "{in}"], "no such model directory"),
        (["evaluate", "no_model", "{in}", "--labels-key", "nope"], "no such model"),
        (["evaluate", ".", "{in}", "--n-mc-samples", "0"], "--n-mc-samples must be at least 1"),
        (["train", "not_h5ad.txt", "-o", "x.h5ad", *FAST], "not_h5ad.txt is not a readable .h5ad"),
    ],
)
def test_errors_exit_two_without_traceback(args, message, counts_file, capsys, monkeypatch):
    monkeypatch.chdir(counts_file.parent)
    (counts_file.parent / "not_h5ad.txt").write_text("cell,gene\n")
    with h5py.File(counts_file.parent / "ten_x.h5", "w") as h5:  # as Cell Ranger writes
        h5.create_group("matrix").create_dataset("data", data=np.arange(3))
    assert main([a.format(**{"in": counts_file}) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_output_is_whole_or_absent_after_a_failed_write(counts_file, tmp_path, monkeypatch):
    out = tmp_path / "o.h5ad"
    write_h5ad = ad.AnnData.write_h5ad

    def disk_full(self, path, **kwargs):
        write_h5ad(self[:3], path)  # a part of the file, then the failure
        raise OSError("No space left on device")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", disk_full)
    assert main(["train", str(counts_file), "-o", str(out), *FAST]) == 2
    assert not out.exists()
    out.write_bytes(b"an earlier output")
    assert main(["train", str(counts_file), "-o", str(out), "--overwrite", *FAST]) == 2
    assert out.read_bytes() == b"an earlier output"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.h5ad", "o.h5ad"]


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


def test_sigterm_outside_training_exits_143_and_leaves_no_output(
    counts_file, tmp_path, monkeypatch
):
    out = tmp_path / "o.h5ad"

    def killed(self, path, **kwargs):  # a scheduler's time limit while the output is written
        Path(path).write_bytes(b"half a file")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(ad.AnnData, "write_h5ad", killed)
    assert main(["train", str(counts_file), "-o", str(out), *FAST]) == 143
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.h5ad"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_a_stdout_that_cannot_be_written_is_one_error_line(saved_gmvae, monkeypatch, capsys):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    model_dir, path = saved_gmvae
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["evaluate", str(model_dir), str(path), "--n-mc-samples", "2"]) == 2
    assert "cannot write the result" in capsys.readouterr().err


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


def test_training_stopped_by_sigterm_exits_143(counts_file, tmp_path, monkeypatch, capsys):
    """Lightning ends a fit on SIGTERM with a bare SystemExit; a script must not read that as
    success."""

    def stopped(*args, **kwargs):
        raise SystemExit

    monkeypatch.setattr(scvae.tl, "fit_model", stopped)
    assert main(["train", str(counts_file), "-o", str(tmp_path / "o.h5ad")]) == 143
    assert "stopped before finishing" in capsys.readouterr().err
    assert not (tmp_path / "o.h5ad").exists()


def test_training_interrupted_by_ctrl_c_exits_130(counts_file, tmp_path, monkeypatch, capsys):
    """Lightning ends a fit on Ctrl-C (SIGINT) with SystemExit(1), raised while it handles
    the KeyboardInterrupt; the shell's convention for SIGINT is 128 + 2."""

    def interrupted(*args, **kwargs):  # what Lightning's trainer does
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            sys.exit(1)

    monkeypatch.setattr(scvae.tl, "fit_model", interrupted)
    assert main(["train", str(counts_file), "-o", str(tmp_path / "o.h5ad")]) == 130
    assert "stopped before finishing" in capsys.readouterr().err
    assert not (tmp_path / "o.h5ad").exists()

    def reading(*args, **kwargs):  # Ctrl-C outside training
        raise KeyboardInterrupt

    monkeypatch.setattr(ad, "read_h5ad", reading)
    assert main(["train", str(counts_file), "-o", str(tmp_path / "o.h5ad")]) == 130
    assert main(["evaluate", str(tmp_path), str(counts_file)]) == 130


def test_ctrl_c_in_a_real_fit_exits_130(counts_file, tmp_path, monkeypatch, capsys):
    from lightning.pytorch.callbacks import Callback

    class CtrlC(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            raise KeyboardInterrupt

    fit_model = scvae.tl.fit_model

    def fit_interrupted(*args, train_kwargs, **kwargs):
        return fit_model(*args, train_kwargs={**train_kwargs, "callbacks": [CtrlC()]}, **kwargs)

    monkeypatch.setattr(scvae.tl, "fit_model", fit_interrupted)
    handler = signal.getsignal(signal.SIGINT)
    try:
        assert main(["train", str(counts_file), "-o", str(tmp_path / "o.h5ad"), *FAST]) == 130
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT once it has stopped
    assert "stopped before finishing" in capsys.readouterr().err
    assert not (tmp_path / "o.h5ad").exists()


def test_evaluate_gives_the_same_numbers_for_the_same_seed(saved_gmvae, capsys):
    model_dir, path = saved_gmvae
    runs = []
    for seed in ([], [], ["--seed", "0"], ["--seed", "1"]):
        args = ["evaluate", str(model_dir), str(path), "--n-mc-samples", "3", *seed]
        assert main(args) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1] == runs[2]
    assert runs[3]["log_likelihood"] != runs[0]["log_likelihood"]


def test_evaluate_refuses_labels_missing_for_some_cells(saved_gmvae, tmp_path, capsys):
    model_dir, path = saved_gmvae
    adata = ad.read_h5ad(path)
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(object)
    adata.obs.iloc[:5, adata.obs.columns.get_loc("cell_type")] = np.nan
    adata.write_h5ad(tmp_path / "nan.h5ad")
    args = ["evaluate", str(model_dir), str(tmp_path / "nan.h5ad"), "--labels-key", "cell_type"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--labels-key='cell_type': 5 of 150 cells have no label" in err
    assert "Traceback" not in err


def test_evaluate_names_a_damaged_or_empty_model_directory(counts_file, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty), str(counts_file)]) == 2
    assert "No saved model at" in capsys.readouterr().err
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "model.pt").write_bytes(b"PK\x03\x04 truncated")
    assert main(["evaluate", str(damaged), str(counts_file)]) == 2
    err = capsys.readouterr().err
    assert "not a readable scvae model" in err and "Traceback" not in err


def test_errors_name_the_command_line_options(tmp_path, capsys):
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    adata.X = np.log1p(adata.X)  # raw counts only in layers["counts"]
    adata.write_h5ad(tmp_path / "in.h5ad")
    assert main(["train", str(tmp_path / "in.h5ad"), "-o", str(tmp_path / "o.h5ad"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--layer counts" in err and "--allow-non-integer" in err and "layer=" not in err


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n-genes", "-5"], "0 (all genes) or a positive integer, got '-5'"),
        (["--n-clusters", "0"], "positive integer or 'auto'"),
        (["--n-clusters", "500"], "more than the 135 training cells"),
        (["--max-epochs", "0"], "--max-epochs must be a positive integer"),
    ],
)
def test_demo_checks_its_options_before_creating_the_directory(
    args, message, tmp_path, monkeypatch, capsys
):
    def fit_model(*args, **kwargs):
        raise AssertionError("the demo trained with options it should have refused")

    tiny = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    monkeypatch.setattr(scvae.datasets, "paul15", tiny.copy)
    monkeypatch.setattr(scvae.tl._demo, "fit_model", fit_model)
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), *args, "--no-progress-bar"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_names_the_columns_there_are_for_a_wrong_labels_key(counts_file, tmp_path, capsys):
    model_dir = tmp_path / "model"
    args = ["train", str(counts_file), "-o", str(tmp_path / "o.h5ad"), "--save-model"]
    assert main([*args, str(model_dir), *FAST]) == 0
    assert main(["evaluate", str(model_dir), str(counts_file), "--labels-key", "nope"]) == 2
    assert "'cell_type', 'batch'" in capsys.readouterr().err


def test_output_paths_are_checked_before_the_input_is_read(counts_file, tmp_path, monkeypatch):
    def read_h5ad(*args, **kwargs):
        raise AssertionError("the input was read before the output path was checked")

    monkeypatch.setattr(ad, "read_h5ad", read_h5ad)
    missing = tmp_path / "missing" / "out.h5ad"
    assert main(["train", str(counts_file), "-o", str(missing)]) == 2
    existing = tmp_path / "exists.h5ad"
    existing.touch()
    assert main(["train", str(counts_file), "-o", str(existing)]) == 2


def test_non_integer_input_names_the_command_line_flag(tmp_path, capsys):
    adata = synthetic_counts(n_cells=60, n_genes=20, seed=0)
    adata.X = adata.X * 0.5
    adata.write_h5ad(tmp_path / "half.h5ad")
    assert main(["train", str(tmp_path / "half.h5ad"), "-o", str(tmp_path / "o.h5ad")]) == 2
    err = capsys.readouterr().err
    assert "--allow-non-integer" in err and "allow_non_integer=True" not in err
    args = ["train", str(tmp_path / "half.h5ad"), "-o", str(tmp_path / "o.h5ad")]
    assert main([*args, "--allow-non-integer", *FAST]) == 0


def test_version_names_scvae_torch_and_the_device(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"scvae-torch {scvae.__version__}\n") and "torch " in out
    assert "GPU" in out


def test_help_imports_neither_torch_nor_scvi_tools():
    code = (
        "import sys; from scvae.cli import main; main(['train', '--help']); "
        "assert not {'torch', 'scvi'} & set(sys.modules), sorted(sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--n-clusters" in result.stdout


def test_the_help_texts_defaults_are_the_librarys():
    assert inspect.signature(scvae.GMVAE).parameters["n_clusters"].default == (
        GMVAE_DEFAULT_CLUSTERS
    )
    assert LIKELIHOOD_NAMES == tuple(LIKELIHOODS)
    assert set(CLI_BATCH_NORM_PLACES) == set(BATCH_NORM_PLACES)
    assert inspect.signature(scvae.GMVAE).parameters["use_batch_norm"].default == "encoder"


@pytest.mark.parametrize(
    ("command", "stated"),
    [
        ("train", f"(default: {SEPARABILITY_THRESHOLD}"),
        ("demo", f"K is by default the {DEMO_N_CLUSTERS} "),
        ("demo", f"model choose (default: {DEMO_N_CLUSTERS})"),
        ("demo", f"0 for all (default: {DEMO_N_GENES})"),
        (
            "evaluate",
            "importance samples per cell (default: {})".format(
                inspect.signature(scvae.tl.evaluate_model).parameters["n_mc_samples"].default
            ),
        ),
    ],
)
def test_the_help_states_the_librarys_defaults(command, stated, capsys):
    """The help is written without torch, so its numbers are literals: each must be the
    library's."""
    assert main([command, "--help"]) == 0
    assert stated in " ".join(capsys.readouterr().out.split())
