"""The scvae commands refuse bad input: errors exit 2 in one line without a traceback,
signals exit 130 or 143, and a failed or stopped write leaves no partial output."""

import os
import signal
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest

import scvae
from scvae.cli import main
from scvae.datasets import synthetic_counts
from tests.helpers import FAST


def test_train_refuses_an_unknown_batch_norm_placement(counts_file, tmp_path, capsys):
    args = ["train", str(counts_file), "-o", str(tmp_path / "out.h5ad"), "--batch-norm", "yes"]
    assert main(args) == 2
    assert "--batch-norm: invalid choice: 'yes'" in capsys.readouterr().err
    assert not (tmp_path / "out.h5ad").exists()


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
        (["train", "{in}", "-o", "not_h5ad.txt/x.h5ad"], "not_h5ad.txt is a file, not a dir"),
        # Paths are quoted as typed, not read as option names.
        (["train", "{in}", "-o", "n_clusters=10.h5ad/x.h5ad"], "put n_clusters=10.h5ad/x.h5ad: /"),
        (["train", "max_epochs.h5ad", "-o", "x.h5ad"], "max_epochs.h5ad: no such file"),
        (["train", "{in}", "-o", "n_clusters=10.h5ad"], "n_clusters=10.h5ad exists; pass"),
        (["train", "{in}", "-o", "x.h5ad", "--batch-key", "a/b", *FAST], "--batch-key 'a/b'"),
        (["train", "{in}", "-o", "x.h5ad", "--save-model", "not_h5ad.txt/a/m"], "is a file, not"),
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
    (counts_file.parent / "n_clusters=10.h5ad").write_text("")
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n-genes", "-5"], "0 (all genes) or a positive integer, got '-5'"),
        (["--n-clusters", "0"], "positive integer or 'auto'"),
        (["--n-clusters", "500"], "more than the 122 training cells"),
        (["--n-clusters", "130"], "more than the 122 training cells"),  # 135 not held out
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


def test_a_batch_column_where_the_clusters_go_is_named_with_a_command_line_fix(tmp_path, capsys):
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    adata.obs["scvae_cluster"] = adata.obs["cell_type"]  # an earlier output used as batches
    adata.write_h5ad(tmp_path / "in.h5ad")
    args = ["train", str(tmp_path / "in.h5ad"), "-o", str(tmp_path / "o.h5ad"), "--model", "gmvae"]
    assert main([*args, "--n-clusters", "3", "--batch-key", "scvae_cluster", *FAST]) == 2
    err = capsys.readouterr().err
    assert "registered as --batch-key: rename that column first" in err and "key_added" not in err


def test_warnings_during_a_command_are_one_line_without_a_source_location(tmp_path, capsys):
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    adata.var_names = ["a", *adata.var_names[1:-1], "a"]  # a repeated gene name
    adata.write_h5ad(tmp_path / "in.h5ad")
    assert main(["train", str(tmp_path / "in.h5ad"), "-o", str(tmp_path / "o.h5ad"), *FAST]) == 0
    err = capsys.readouterr().err
    assert "scvae train: UserWarning: 1 gene names repeat an earlier one" in err
    assert "_validation.py" not in err and "runpy" not in err


def test_a_warning_names_the_command_line_options(tmp_path, capsys):
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    adata.write_h5ad(tmp_path / "in.h5ad")
    args = ["train", str(tmp_path / "in.h5ad"), "-o", str(tmp_path / "o.h5ad"), "--model", "gmvae"]
    # 60 components on 150 cells: most hold too few cells to be in use.
    assert main([*args, "--n-clusters", "60", *FAST]) == 0
    err = capsys.readouterr().err
    assert "scvae train: UserWarning:" in err and "GMVAE clusters hold" in err
    assert "a smaller --n-clusters, --n-clusters auto, or --separability" in err
    assert "training_curves in Python" in err and "the summary's cluster_sizes" in err
    assert "n_clusters" not in err and "model." not in err
