"""Numerical stability: Poisson VAEs on the synthetic data that broke an earlier attempt.

An earlier implementation produced non-finite losses when training a Poisson VAE on a wide,
very sparse matrix with a few huge counts (2000 cells x 28000 genes, 93 % zeros, counts up to
1e4), and with scVAE's deep architecture (hidden layers 1000, 500, 250, 100). This script
rebuilds such a matrix and trains both cases for 30 epochs:

(a) ``scvae.VAE(adata, likelihood="poisson")`` (one hidden layer of 128);
(b) ``scvae.VAE(adata, likelihood="poisson", n_hidden=[1000, 500, 250, 100])``.

scvae's training stops with :class:`scvae.train.NonFiniteLossError` at the first non-finite
loss or gradient, so a completed run proves that every step was finite; in addition every
training step's loss is recorded by a small Lightning callback and checked here.

Run from the repository root::

    python3 benchmarks/numerics.py               # both cases, 30 epochs
    python3 benchmarks/numerics.py --cases a     # one case

Results are printed and written to ``docs/benchmarks/numerics.md``.
"""

import argparse
import datetime
import logging
import math
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
import scvi
import torch
from lightning.pytorch import Callback

import scvae
from scvae.train import NonFiniteLossError

REPO = Path(__file__).resolve().parents[1]
N_CELLS, N_GENES = 2000, 28000
ZERO_FRACTION = 0.93
MAX_COUNT = 10_000
DATA_SEED = 0
TRAIN_SEED = 0
CASES = {
    "a": {"likelihood": "poisson"},
    "b": {"likelihood": "poisson", "n_hidden": [1000, 500, 250, 100]},
}


class LossRecorder(Callback):
    """Keep the training loss of every step."""

    def __init__(self):
        self.losses: list[float] = []
        self.epochs = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epochs += 1


def _expected_zero_fraction(gene_means: np.ndarray, size_factors: np.ndarray) -> float:
    """Mean of exp(-mean * size) over all entries, with the gene means binned in log space."""
    weights, edges = np.histogram(np.log(gene_means), bins=4000)
    centres = np.exp((edges[:-1] + edges[1:]) / 2)
    p_zero = np.exp(-np.outer(size_factors, centres)) @ (weights / weights.sum())
    return float(p_zero.mean())


def synthetic_counts(seed: int = DATA_SEED) -> sp.csr_matrix:
    """2000 x 28000 Poisson counts, 93 % zeros, a few cells with huge counts, max exactly 1e4.

    Gene means are log-normal, clipped to [1e-3, 1e2]; cell size factors are log-normal with a
    scale calibrated (bisection on the expected zero fraction) so that 93 % of the entries are
    zero; ten cells get 100 times larger size factors. Counts are capped at 1e4 and one entry
    is set to exactly 1e4.
    """
    rng = np.random.default_rng(seed)
    gene_means = np.clip(10 ** rng.normal(-1.0, 1.0, N_GENES), 1e-3, 1e2)
    size_factors = rng.lognormal(0.0, 0.5, N_CELLS)
    huge = rng.choice(N_CELLS, 10, replace=False)
    size_factors[huge] *= 100.0
    low, high = 1e-3, 1e3
    for _ in range(50):  # the zero fraction decreases with the scale
        mid = math.sqrt(low * high)
        if _expected_zero_fraction(gene_means, mid * size_factors) > ZERO_FRACTION:
            low = mid
        else:
            high = mid
    size_factors *= math.sqrt(low * high)
    chunks = []
    for start in range(0, N_CELLS, 200):
        rates = size_factors[start : start + 200, None] * gene_means[None, :]
        counts = np.minimum(rng.poisson(rates), MAX_COUNT).astype(np.float32)
        chunks.append(sp.csr_matrix(counts))
    x = sp.vstack(chunks, format="csr")
    x[int(huge[0]), int(np.argmax(gene_means))] = MAX_COUNT
    x.eliminate_zeros()
    return x


def run_case(name: str, adata: ad.AnnData, max_epochs: int) -> dict:
    scvi.settings.seed = TRAIN_SEED
    kwargs = CASES[name]
    model = scvae.VAE(adata, **kwargs)
    recorder = LossRecorder()
    start = time.perf_counter()
    error = None
    try:
        model.train(
            max_epochs=max_epochs,
            callbacks=[recorder],
            enable_progress_bar=False,
            accelerator="cpu",
            annotate=False,
            plan_kwargs={"n_epochs_kl_warmup": 400},  # scvi-tools' warm-up, as documented
        )
    except NonFiniteLossError as exc:
        error = str(exc)
    seconds = time.perf_counter() - start
    losses = np.array(recorder.losses)
    result = {
        "case": name,
        "model": "scvae.VAE(adata, "
        + ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        + ")",
        "epochs": recorder.epochs,
        "steps": len(losses),
        "min_loss": float(losses.min()) if len(losses) else float("nan"),
        "max_loss": float(losses.max()) if len(losses) else float("nan"),
        "first_loss": float(losses[0]) if len(losses) else float("nan"),
        "last_loss": float(losses[-1]) if len(losses) else float("nan"),
        "all_finite": error is None and bool(np.isfinite(losses).all()),
        "error": error,
        "seconds": seconds,
    }
    if error is None:
        torch.manual_seed(0)
        result["final_elbo"] = float(model.get_elbo())
    else:
        result["final_elbo"] = float("nan")
    print(
        f"case ({name}): {result['steps']} steps in {seconds:.0f} s, loss "
        f"{result['min_loss']:.6g}..{result['max_loss']:.6g}, all finite: "
        f"{result['all_finite']}, final ELBO {result['final_elbo']:.6g}"
        + (f"\n  error: {error}" if error else ""),
        flush=True,
    )
    return result


def report(args, data_summary: dict, results: list[dict], total: float) -> str:
    command = "python3 " + shlex.join(["benchmarks/numerics.py", *sys.argv[1:]])
    lines = [
        "# Numerical stability on extreme synthetic counts",
        "",
        f"Produced by `{command}` on {datetime.date.today().isoformat()} on a CPU-only machine "
        f"with 2 CPU cores (shared with other work; torch limited to {args.threads} thread(s)), "
        f"torch {torch.__version__}, scvi-tools {scvi.__version__}, "
        f"scvae {scvae.__version__}, Python {platform.python_version()}; the whole script took "
        f"{total / 60:.1f} min.",
        "",
        f"**Data** (`synthetic_counts(seed={DATA_SEED})` in the script): "
        f"{data_summary['cells']} cells x {data_summary['genes']} genes, float32 CSR, "
        f"{data_summary['zero_fraction']:.2%} zeros, max count {data_summary['max']:g}, "
        f"cell totals {data_summary['min_total']:g}..{data_summary['max_total']:g} "
        "(log-normal gene means in [1e-3, 1e2], log-normal size factors, ten cells with 100x "
        "larger size factors).",
        "",
        f"**Training**: {args.max_epochs} epochs, scvae's defaults otherwise (batch size 128, "
        "Adam lr 1e-3, scvi-tools' KL warm-up over 400 epochs, `train_size=0.9`), "
        f"`scvi.settings.seed = {TRAIN_SEED}`. scvae's `NonFiniteLossGuard` raises "
        "`NonFiniteLossError` at the first non-finite loss or gradient; a callback also records "
        "every training step's loss (negative ELBO per cell with the warm-up KL weight). "
        "*Final ELBO*: `get_elbo()` on all 2000 cells after training (per cell, higher is "
        "better).",
        "",
        "| case | model | epochs | steps | min loss | max loss | first / last loss "
        "| all finite | final ELBO | wall time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| ({r['case']}) | `{r['model']}` | {r['epochs']} | {r['steps']} "
            f"| {r['min_loss']:.1f} | {r['max_loss']:.4g} "
            f"| {r['first_loss']:.4g} / {r['last_loss']:.1f} "
            f"| {'yes' if r['all_finite'] else 'NO'} | {r['final_elbo']:.1f} "
            f"| {r['seconds'] / 60:.1f} min |"
        )
    errors = [r for r in results if r["error"]]
    for r in errors:
        lines += ["", f"Case ({r['case']}) stopped: {r['error']}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "numerics.md")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    scvi.settings.verbosity = 40
    for logger in ("lightning.pytorch", "lightning.fabric", "scvi"):
        logging.getLogger(logger).setLevel(logging.ERROR)

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    x = synthetic_counts()
    totals = np.asarray(x.sum(axis=1)).ravel()
    summary = {
        "cells": x.shape[0],
        "genes": x.shape[1],
        "zero_fraction": 1.0 - x.nnz / (x.shape[0] * x.shape[1]),
        "max": float(x.max()),
        "min_total": float(totals.min()),
        "max_total": float(totals.max()),
    }
    print(f"data: {summary} ({time.perf_counter() - start:.0f} s)", flush=True)
    assert abs(summary["zero_fraction"] - ZERO_FRACTION) <= 0.01, summary
    assert summary["max"] == MAX_COUNT, summary
    assert x.dtype == np.float32 and sp.isspmatrix_csr(x)

    adata = ad.AnnData(X=x)
    scvae.setup_anndata(adata)
    results = []
    for name in args.cases:
        results.append(run_case(name, adata, args.max_epochs))
        # Written after every case, so a finished case is on record while the next one runs.
        text = report(args, summary, results, time.perf_counter() - start)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print("\n" + text)
    for r in results:
        assert r["all_finite"], f"case ({r['case']}) had a non-finite loss"
        assert r["steps"] > 0
    return results


if __name__ == "__main__":
    main()
