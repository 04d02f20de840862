"""Training from a backed h5ad shaped like 10x's 1.3M mouse brain cells: memory and speed.

Two steps, each a sub-command::

    python benchmarks/scale.py write /path/synthetic_1.3M.h5ad   # ~3 GB on disk
    python benchmarks/scale.py train /path/synthetic_1.3M.h5ad   # writes docs/benchmarks/scale.md

``write`` draws a cells x genes matrix (default 1,306,127 x 27,998, 10x's data set) of
negative binomial counts with planted cell types, chunk by chunk, and appends each chunk to
the h5ad's CSR ``X``, so memory stays bounded by a chunk (per worker: ``--workers`` draws
chunks in parallel processes; each chunk has its own seed, so the file is the same whatever
the number of workers). The counts are exact NB draws:

* cell type c (``obs["cell_type"]``, 10 types) raises 200 marker genes' means 8-fold over a
  gene's base mean ``exp(N(-5.6, 1.5^2))``; a cell's size factor s (``obs["size_factor"]``) is
  one of 0.5, 0.8, 1.25, 2; the mean is ``s * base * marker``, the inverse dispersion 2;
* whether a count is non-zero is a Bernoulli draw with the NB's P(x > 0), and its value a
  draw from the zero-truncated NB by inverting its CDF, which together is an NB draw. About 1%
  of the entries are non-zero.

``train`` runs one epoch of scvae's VAE and of its GMVAE (K = 10), each in a fresh process
reading the file with ``anndata.read_h5ad(path, backed="r")``, and reports cells per second and
the peak resident memory of that process (``ru_maxrss``, which includes Python, torch and
the model), and on a GPU the peak GPU memory torch allocated. ``--max-steps`` and
``--max-seconds`` stop an epoch early (the table says so): on a CPU a full GMVAE epoch over
1.3M cells and 28k genes takes hours. ``--reads blocks rows`` also trains with the
file read row by row (``block_size=1``: each minibatch 128 scattered single-row reads, as a
fully random sampler does) next to scvae's default block-shuffled reads, to show what the
reading scheme is worth.
"""

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
N_CELL_TYPES = 10
N_MARKERS = 200
MARKER_FOLD = 8.0
SIZE_FACTORS = np.array([0.5, 0.8, 1.25, 2.0])
THETA = 2.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="draw the counts and write the h5ad")
    write.add_argument("path", type=Path)
    write.add_argument("--n-cells", type=int, default=1_306_127)
    write.add_argument("--n-genes", type=int, default=27_998)
    write.add_argument("--chunk", type=int, default=4096, help="cells drawn at a time")
    write.add_argument("--seed", type=int, default=0)
    write.add_argument("--workers", type=int, default=1, help="processes drawing chunks")
    train = commands.add_parser("train", help="one epoch of VAE and GMVAE from the backed file")
    train.add_argument("path", type=Path)
    train.add_argument("--models", nargs="+", default=["vae", "gmvae"])
    train.add_argument("--max-steps", type=int, default=None, help="stop an epoch early")
    train.add_argument("--max-seconds", type=float, default=None, help="stop an epoch early")
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument(
        "--reads",
        nargs="+",
        choices=["blocks", "rows"],
        default=["blocks"],
        help="blocks: scvae's default block-shuffled reads; rows: one read per cell",
    )
    train.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "scale.md")
    one = commands.add_parser("one", help="(internal) one model's epoch, JSON on stdout")
    one.add_argument("path", type=Path)
    one.add_argument("model")
    one.add_argument("--max-steps", type=int, default=None)
    one.add_argument("--max-seconds", type=float, default=None)
    one.add_argument("--batch-size", type=int, default=128)
    one.add_argument("--reads", choices=["blocks", "rows"], default="blocks")
    return parser.parse_args(argv)


def gene_means(n_genes: int, rng: np.random.Generator) -> np.ndarray:
    """Means of each cell type (``(types, genes)``) at size factor 1."""
    base = np.exp(rng.normal(-5.6, 1.5, n_genes))
    means = np.tile(base, (N_CELL_TYPES, 1))
    for c in range(N_CELL_TYPES):
        means[c, rng.choice(n_genes, N_MARKERS, replace=False)] *= MARKER_FOLD
    return means


def zero_truncated_nb(mu: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per mean from the NB(mu, THETA) conditioned on x > 0 (inverse CDF)."""
    p_success = mu / (mu + THETA)
    pmf = THETA * (1 - p_success) ** THETA * p_success  # P(x = 1)
    p_positive = 1 - (1 - p_success) ** THETA
    target = rng.random(len(mu)) * p_positive  # invert the CDF of x on [1, inf)
    values = np.ones(len(mu), dtype=np.float32)
    cdf = pmf.copy()
    open_ = np.flatnonzero(cdf < target)
    k = 1
    while len(open_):
        k += 1
        pmf[open_] *= (k - 1 + THETA) / k * p_success[open_]
        cdf[open_] += pmf[open_]
        values[open_] = k
        # Float rounding can leave the CDF a hair below the target in the far tail.
        open_ = open_[(cdf[open_] < target[open_]) & (pmf[open_] > 1e-12)]
    return values


def draw_chunk(
    cell_types: np.ndarray, size_factors: np.ndarray, means: np.ndarray, rng
) -> sp.csr_matrix:
    """NB counts of one chunk of cells as CSR (float32)."""
    mu = size_factors[:, None] * means[cell_types]  # (cells, genes), float64
    p_zero = (THETA / (THETA + mu)) ** THETA
    rows, cols = np.nonzero(rng.random(mu.shape, dtype=np.float32) >= p_zero)
    values = zero_truncated_nb(mu[rows, cols], rng)
    return sp.csr_matrix((values, (rows, cols)), shape=mu.shape, dtype=np.float32)


#: What the worker processes drawing chunks share (set before they are forked).
_PLAN: dict = {}


def _draw_planned_chunk(task: tuple[int, int, np.random.SeedSequence]) -> sp.csr_matrix:
    begin, end, seed = task
    return draw_chunk(
        _PLAN["cell_types"][begin:end],
        _PLAN["size_factors"][begin:end],
        _PLAN["means"],
        np.random.default_rng(seed),
    )


def write(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    means = gene_means(args.n_genes, rng)
    cell_types = rng.integers(N_CELL_TYPES, size=args.n_cells)
    size_factors = rng.choice(SIZE_FACTORS, size=args.n_cells)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(cell_types.astype(str)), "size_factor": size_factors},
        index=[f"cell{i}" for i in range(args.n_cells)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(args.n_genes)])
    ad.AnnData(obs=obs, var=var).write_h5ad(args.path)
    _PLAN.update(cell_types=cell_types, size_factors=size_factors, means=means)
    begins = range(0, args.n_cells, args.chunk)
    seeds = np.random.SeedSequence(args.seed).spawn(len(begins))
    ends = [min(b + args.chunk, args.n_cells) for b in begins]
    tasks = list(zip(begins, ends, seeds, strict=True))
    start, nnz = time.perf_counter(), 0
    with (
        multiprocessing.get_context("fork").Pool(args.workers) as pool,
        h5py.File(args.path, "a") as file,
    ):
        for i, chunk in enumerate(pool.imap(_draw_planned_chunk, tasks)):
            nnz += chunk.nnz
            if i == 0:
                ad.io.write_elem(file, "X", chunk)
            else:
                ad.io.sparse_dataset(file["X"]).append(chunk)
            if i % 25 == 0:
                end = tasks[i][1]
                print(f"{end} cells, {nnz / (end * args.n_genes):.2%} non-zero", flush=True)
    print(
        f"wrote {args.path}: {args.n_cells} x {args.n_genes}, {nnz} non-zero "
        f"({nnz / (args.n_cells * args.n_genes):.2%}), "
        f"{args.path.stat().st_size / 2**30:.2f} GiB, {time.perf_counter() - start:.0f} s"
    )


def one_epoch(args: argparse.Namespace) -> None:
    """Train one model for one epoch from the backed file; print a JSON line of results."""
    import lightning.pytorch as pl
    import scvi
    import torch

    import scvae

    class StepLimit(pl.Callback):
        def __init__(self):
            self.steps, self.start, self.end = 0, None, None

        def on_train_batch_start(self, trainer, *_):
            if self.start is None:  # timing starts at the first minibatch
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, *_):
            self.steps += 1
            out_of_steps = args.max_steps and self.steps >= args.max_steps
            elapsed = time.perf_counter() - self.start
            if out_of_steps or (args.max_seconds and elapsed >= args.max_seconds):
                trainer.should_stop = True

        def on_train_end(self, trainer, *_):
            self.end = time.perf_counter()  # the loop's end: what follows is the fit's wrap-up

    scvi.settings.verbosity = 40
    begin = time.perf_counter()
    adata = ad.read_h5ad(args.path, backed="r")
    scvae.setup_anndata(adata)
    setup_seconds = time.perf_counter() - begin
    if args.model == "vae":
        model = scvae.VAE(adata)
    else:
        model = scvae.GMVAE(adata, n_clusters=N_CELL_TYPES, component_spread=1.0)
    # The GMVAE places its components at the end of an epoch after its KL warm-up
    # (scvae.model.GMVAESchedule); a one-epoch run leaves that off, its components spread
    # out from the start (a fit that never places them from one point is refused).
    options = {"component_init_epochs": 0} if args.model == "gmvae" else {}
    if args.reads == "rows":  # blocks of one row, a minibatch per buffer: one read per cell
        options["datasplitter_kwargs"] = {"block_size": 1, "blocks_per_buffer": args.batch_size}
    limit = StepLimit()
    model.train(
        max_epochs=1,
        train_size=1.0,
        batch_size=args.batch_size,
        callbacks=[limit],
        annotate=False,
        enable_progress_bar=False,
        **options,
    )
    seconds = limit.end - limit.start
    after_fit_seconds = time.perf_counter() - limit.end
    n_cells = min(limit.steps * args.batch_size, adata.n_obs)
    result = {
        "model": args.model,
        "reads": args.reads,
        "steps": limit.steps,
        "cells": n_cells,
        "full_epoch": n_cells >= adata.n_obs,
        "seconds": seconds,
        "cells_per_second": n_cells / seconds,
        "setup_seconds": setup_seconds,
        "after_fit_seconds": after_fit_seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "device": str(model.device),
        "device_name": (
            torch.cuda.get_device_name(model.device)
            if model.device.type == "cuda"
            else f"cpu ({torch.get_num_threads()} threads)"
        ),
        "peak_gpu_gib": (
            torch.cuda.max_memory_allocated(model.device) / 2**30
            if model.device.type == "cuda"
            else None
        ),
    }
    print(json.dumps(result))


def train(args: argparse.Namespace) -> None:
    backed = ad.read_h5ad(args.path, backed="r")
    n_cells, n_genes = backed.shape
    nnz = backed.X.group["indptr"][-1]
    backed.file.close()
    rows = []
    for model in args.models:
        for reads in args.reads:
            command = [sys.executable, __file__, "one", str(args.path), model]
            command += ["--batch-size", str(args.batch_size), "--reads", reads]
            if args.max_steps:
                command += ["--max-steps", str(args.max_steps)]
            if args.max_seconds:
                command += ["--max-seconds", str(args.max_seconds)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    lines = [
        "# Scale: one epoch from a backed 1.3M-cell h5ad",
        "",
        f"Produced by `python benchmarks/scale.py {shlex.join(sys.argv[1:])}` on "
        f"{datetime.date.today()} ({platform.machine()}, {os.cpu_count()} cores). The file "
        f"(`python benchmarks/scale.py write`) holds {n_cells:,} cells x {n_genes:,} genes of "
        f"NB counts with 10 planted cell types, {nnz:,} non-zero ({nnz / n_cells / n_genes:.2%})"
        f", {args.path.stat().st_size / 2**30:.2f} GiB. Each model trains in a fresh process "
        f"from `anndata.read_h5ad(path, backed='r')`, defaults otherwise (NB, 10 latent, one "
        f"hidden layer of 128), batch size {args.batch_size}, no validation split. Peak RSS is "
        "the process's `ru_maxrss` (Python, torch, model and data together, the wrap-up "
        "included). Cells per second are timed from the first minibatch to the end of the "
        "training loop; setup (registration, which reads the file once to validate the "
        "counts) and the fit's wrap-up after the loop (the GMVAE's cluster selection and "
        "assignments, a pass over every cell) are timed apart.",
        "",
        "| model | disk reads | device | cells trained | full epoch | cells / s "
        "| epoch time (h) | setup (s) | after the loop (s) | peak RSS (GiB) "
        "| peak GPU memory (GiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    reads_short = {"blocks": "block-shuffled", "rows": "row by row"}
    reads_detail = {
        "blocks": "default: 16 blocks of 1024 rows per buffer",
        "rows": "`block_size=1`",
    }
    reads_name = {key: f"{reads_short[key]} ({reads_detail[key]})" for key in reads_short}
    for row in rows:
        epoch_hours = n_cells / row["cells_per_second"] / 3600
        estimated = "" if row["full_epoch"] else " (extrapolated)"
        gpu_gib = "-" if row["peak_gpu_gib"] is None else f"{row['peak_gpu_gib']:.2f}"
        lines.append(
            f"| {row['model']} | {reads_name[row['reads']]} | "
            f"{row['device_name']} | "
            f"{row['cells']:,} | {'yes' if row['full_epoch'] else 'no'} | "
            f"{row['cells_per_second']:.0f} | {epoch_hours:.2f}{estimated} | "
            f"{row['setup_seconds']:.0f} | {row['after_fit_seconds']:.0f} | "
            f"{row['peak_rss_gib']:.2f} | {gpu_gib} |"
        )
    speed = {(row["model"], row["reads"]): row["cells_per_second"] for row in rows}
    costs = [
        f"{reads_short[reads]} {speed['vae', reads] / speed['gmvae', reads]:.2f}"
        for reads in args.reads
        if ("vae", reads) in speed and ("gmvae", reads) in speed
    ]
    if costs:
        lines += [
            "",
            "GMVAE epoch cost over the VAE's (VAE cells/s over GMVAE cells/s, same "
            "reads, this run): " + "; ".join(costs) + ".",
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> None:
    args = parse_args(argv)
    {"write": write, "train": train, "one": one_epoch}[args.command](args)


if __name__ == "__main__":
    main()
