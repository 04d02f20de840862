"""The clusters of ``n_clusters="auto"`` against a fixed-K fit at the number it chose.

An auto fit's clusters are groups of merged mixture components, so a cluster need not be
Gaussian in the latent space. The alternative is to take only the number of clusters from
the auto fit and train ``GMVAE(adata, n_clusters=K)`` at that K, whose clusters are single
Gaussian components (and which costs a second fit). For each data set and seed, one default
``GMVAE(adata, n_clusters="auto")`` is trained, then one default ``GMVAE(adata,
n_clusters=K)`` with the K it chose and the same seed, in the same worker process. Data
loading and genes are ``clustering.py``'s (2,000 most variable genes); the auto fits are the
same as ``clustering.py``'s auto rows of the same seeds.

Run from the repository root::

    python3 benchmarks/auto_refit.py --jobs 2 --threads 1
"""

import argparse
import datetime
import multiprocessing
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import scvi
import torch
from clustering import DATASETS, DEFAULT_DATA_DIR, LABEL_KEY, load, quiet
from sklearn.metrics import adjusted_rand_score

import scvae

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="data set and seed pairs at a time")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per job")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "auto_refit.md")
    return parser.parse_args(argv)


def fit(adata, seed: int, n_clusters) -> tuple[int, float, float]:
    """A default GMVAE fit: the clusters found, their ARI against the labels, seconds."""
    scvi.settings.seed = seed
    begin = time.perf_counter()
    model = scvae.GMVAE(adata, n_clusters=n_clusters)
    model.train(enable_progress_bar=False)
    seconds = time.perf_counter() - begin
    ari = adjusted_rand_score(adata.obs[LABEL_KEY], adata.obs["scvae_cluster"])
    return int(model.n_clusters), ari, seconds


def run_pair(name: str, seed: int, data_dir: Path, threads: int | None) -> dict:
    """The auto fit of one data set and seed, then the fixed-K fit at its K."""
    quiet(threads)
    adata = load(name, data_dir, 2000, None)
    scvae.setup_anndata(adata)
    k, auto_ari, auto_seconds = fit(adata, seed, "auto")
    _, refit_ari, refit_seconds = fit(adata, seed, k)
    return {
        "data": name,
        "labels": adata.obs[LABEL_KEY].nunique(),
        "seed": seed,
        "clusters": k,
        "auto_ari": auto_ari,
        "refit_ari": refit_ari,
        "auto_seconds": auto_seconds,
        "refit_seconds": refit_seconds,
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    pairs = [(name, seed) for name in args.datasets for seed in args.seeds]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [
            pool.submit(run_pair, name, seed, args.data_dir, args.threads) for name, seed in pairs
        ]
        rows = [future.result() for future in futures]
    lines = [
        "# Auto clusters against a fixed-K fit at the number chosen",
        "",
        f"Produced by `python3 benchmarks/auto_refit.py {shlex.join(sys.argv[1:])}` on "
        f"{datetime.date.today()} ({platform.machine()} CPU, {args.jobs} pairs at a time with "
        f"{args.threads or torch.get_num_threads()} torch thread(s) each), torch "
        f"{torch.__version__}, scvi-tools {scvi.__version__}. Per data set and seed: a default "
        '`GMVAE(adata, n_clusters="auto")` fit (its clusters are merged components), then a '
        "default `GMVAE(adata, n_clusters=K)` fit with the K it chose and the same seed (each "
        "cluster one Gaussian component). ARI against the curated labels; times per fit.",
        "",
        "| data | labels | seed | clusters chosen | ARI auto | ARI fixed-K fit at that K "
        "| time auto (s) | time fixed K (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['data']} | {row['labels']} | {row['seed']} | {row['clusters']} | "
            f"{row['auto_ari']:.3f} | {row['refit_ari']:.3f} | {row['auto_seconds']:.0f} | "
            f"{row['refit_seconds']:.0f} |"
        )
    lines += ["", "## Means over seeds", "", "| data | ARI auto | ARI fixed-K fit at that K |"]
    lines.append("| --- | --- | --- |")
    for name in args.datasets:
        sub = [row for row in rows if row["data"] == name]
        auto, refit = (np.array([row[key] for row in sub]) for key in ("auto_ari", "refit_ari"))
        lines.append(
            f"| {name} | {auto.mean():.3f} ± {auto.std():.3f} | "
            f"{refit.mean():.3f} ± {refit.std():.3f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
