"""Training speed with sparse CSR minibatches against dense ones, by the counts' density.

scvae serves training minibatches as torch sparse CSR tensors when at most
``scvae.data._splitter.SPARSE_DENSITY_LIMIT`` of the counts are non-zero: the encoders' input
layer and the negative binomial then read only the non-zero counts. This script trains the
same VAE (NB, 10 latent, 1 x 128 hidden, batch size 128) on each data set of
``../shared/data`` with ``load_sparse_tensor=True`` and ``False``, alternating within one
process, and reports the median over the repeats of the dense / sparse time ratio of each
repeat (above 1: sparse is faster), next to each data set's share of non-zero counts. The
default limit should sit where the ratio crosses 1.

Usage (from the repository root)::

    python benchmarks/sparse_minibatches.py [--epochs 3] [--repeats 5] [--out FILE]
"""

import argparse
import datetime
import time
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
import scvi
import torch
from throughput import cpu_model  # this folder's throughput.py

import scvae
from scvae.data._splitter import SPARSE_DENSITY_LIMIT

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    "mouse_bladder": "mouse_bladder_2100.h5ad",
    "pbmc10x": "pbmc10x_4271_top2000.h5ad",
    "paul15": "paul15_2730.h5ad",
    "zeisel": "zeisel2015_3005.h5ad",
}


def seconds_per_epoch(adata: ad.AnnData, epochs: int, sparse: bool) -> float:
    """Wall time per epoch of a fresh VAE trained with sparse or dense minibatches."""
    model = scvae.VAE(adata, n_latent=10, n_hidden=128, likelihood="nb")
    start = time.perf_counter()
    model.train(
        max_epochs=epochs,
        train_size=1.0,
        annotate=False,
        load_sparse_tensor=sparse,
        enable_progress_bar=False,
        check_val_every_n_epoch=10**6,
    )
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="alternating timed pairs")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks" / "sparse_minibatches.md"
    )
    args = parser.parse_args()
    scvi.settings.verbosity = 40
    rows = []
    for name in args.datasets:
        adata = ad.read_h5ad(args.data_dir / DATASETS[name])
        adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
        adata.X.eliminate_zeros()
        density = adata.X.nnz / (adata.n_obs * adata.n_vars)
        scvae.setup_anndata(adata)
        for sparse in (True, False):  # warm-up
            seconds_per_epoch(adata, 1, sparse)
        times = {True: [], False: []}
        for _ in range(args.repeats):
            for sparse in (True, False):
                times[sparse].append(seconds_per_epoch(adata, args.epochs, sparse))
            print(name, times[True][-1], times[False][-1], flush=True)
        ratios = np.array(times[False]) / np.array(times[True])
        rows.append((name, adata.shape, density, times, ratios))

    lines = [
        "# Sparse against dense training minibatches",
        "",
        f"Produced by `python benchmarks/sparse_minibatches.py --epochs {args.epochs} "
        f"--repeats {args.repeats}` on {datetime.date.today()}, {cpu_model()} CPU "
        f"({torch.get_num_threads()} torch threads), torch {torch.__version__}. The same VAE "
        "(NB, gene dispersion, 10 latent, 1 x 128 hidden, batch size 128, all cells, no "
        "validation) trained with `load_sparse_tensor=True` and `False` in turn; median seconds "
        f"per epoch over {args.repeats} alternating pairs of {args.epochs}-epoch runs, and the "
        "median over the pairs of dense / sparse time (above 1: sparse minibatches are faster).",
        "",
        "| data | cells x genes | non-zero | sparse s/epoch | dense s/epoch "
        "| dense / sparse | default |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, shape, density, times, ratios in rows:
        default = "sparse" if density <= SPARSE_DENSITY_LIMIT else "dense"
        lines.append(
            f"| {name} | {shape[0]} x {shape[1]} | {density:.1%} "
            f"| {np.median(times[True]):.2f} | {np.median(times[False]):.2f} "
            f"| {np.median(ratios):.2f} ({ratios.min():.2f}-{ratios.max():.2f}) | {default} |"
        )
    lines += [
        "",
        f"Default: sparse minibatches at most {SPARSE_DENSITY_LIMIT:.0%} non-zero "
        "(`SPARSE_DENSITY_LIMIT`), dense above.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
