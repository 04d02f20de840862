"""Where the networks batch-normalise: the default GMVAE with ``use_batch_norm`` set to
``"encoder"`` (scvae's default), ``"both"`` (scvi-tools' choice) and ``"none"``.

Each variant is fitted with the GMVAE's defaults otherwise (K = number of labels, one fit per
seed) on paul15, pbmc10x, zeisel and mouse_bladder at their 2,000 most variable genes, and on
paul15, mouse_bladder and the planted wide-sparse set of ``clustering.py`` with all genes.
Scored against the labels (ARI of the clusters and of k-means on the latent means); the
held-out NB ELBO per cell of each variant comes from ``clustering.py``'s split (seed 0,
2,000 genes). Data loading, scoring and the fits are ``clustering.py``'s. A third table follows
a VAE on the planted wide-sparse set epoch by epoch: its training and validation ELBO and
how well k-means on its latent means recovers the planted types.

Run from the repository root (``--jobs 2 --threads 1`` runs two fits at a time)::

    python3 benchmarks/batch_norm.py --jobs 2 --threads 1 --rows rows.jsonl
"""

import argparse
import datetime
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scvi
import torch
from clustering import (
    DEFAULT_DATA_DIR,
    LABEL_KEY,
    REPO,
    fit_gmvae,
    fit_likelihood,
    kmeans,
    load,
    mean_std,
    quiet,
    run_all,
)
from lightning.pytorch import Callback
from sklearn.metrics import adjusted_rand_score

import scvae

VARIANTS = ("encoder", "both", "none")
#: (data set, genes kept: 0 for all) of the clustering fits.
SETTINGS = (
    ("paul15", 2000),
    ("pbmc10x", 2000),
    ("zeisel", 2000),
    ("mouse_bladder", 2000),
    ("paul15", 0),
    ("mouse_bladder", 0),
    ("planted_wide", 0),
)
ELBO_DATASETS = ("paul15", "pbmc10x", "zeisel", "mouse_bladder")
#: The VAE followed epoch by epoch: its epochs, and every how many its latent space is scored.
TRAJECTORY_EPOCHS, TRAJECTORY_EVERY = 100, 10


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--jobs", type=int, default=1, help="fits run in parallel processes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per fit")
    parser.add_argument("--rows", type=Path, help="append every fit's row to this JSONL file")
    parser.add_argument(
        "--resume", action="store_true", help="keep the rows already in --rows, run the rest"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "batch_norm.md")
    return parser.parse_args(argv)


class LatentScore(Callback):
    """Every ``every`` epochs, the ELBOs and the ARI of k-means on the latent means."""

    def __init__(self, model, labels, every: int):
        self.model, self.labels, self.every = model, labels, every
        self.rows = []

    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch + 1
        if epoch % self.every:
            return
        self.model.is_trained_ = True  # the latent space mid-training
        latent = self.model.get_latent_representation()
        self.model.is_trained_ = False
        pl_module.module.train()
        metrics = trainer.callback_metrics
        self.rows.append(
            {
                "epoch": epoch,
                "kmeans_ari": adjusted_rand_score(
                    self.labels, kmeans(latent, len(np.unique(self.labels)), 0)
                ),
                "elbo_train": float(metrics["elbo_train"]),
                "elbo_validation": float(metrics["elbo_validation"]),
            }
        )


def fit_trajectory(adata, variant: str, seed: int) -> dict:
    """A default VAE trained ``TRAJECTORY_EPOCHS`` epochs, scored along the way."""
    scvi.settings.seed = seed
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, use_batch_norm=variant)
    score = LatentScore(model, adata.obs[LABEL_KEY].to_numpy(), TRAJECTORY_EVERY)
    model.train(
        TRAJECTORY_EPOCHS,
        enable_progress_bar=False,
        accelerator="cpu",
        annotate=False,
        callbacks=[score],
        plan_kwargs={"n_epochs_kl_warmup": 400},  # scvi-tools' warm-up, as documented
    )
    return {"trajectory": score.rows, "seed": seed}


def run_task(task: tuple, args: argparse.Namespace) -> list[dict]:
    """One task: ``("fit", data, genes, variant, seed)``, ``("elbo", data, genes, variant)``
    or ``("trajectory", data, genes, variant, seed)``."""
    quiet(args.threads)
    kind, name, genes, variant, *seed = task
    adata = load(name, args.data_dir, genes, None)
    adata.uns["name"] = name
    options = argparse.Namespace(
        gmvae_kwargs={"use_batch_norm": variant}, train_kwargs={}, seeds=args.seeds
    )
    if kind == "elbo":
        (row,) = fit_likelihood(name, adata, "nb", options)
    elif kind == "trajectory":
        row = fit_trajectory(adata, variant, seed[0])
    else:
        k = adata.obs[LABEL_KEY].nunique()
        (row,) = fit_gmvae(adata, k, seed[0], options)
        row["seed"] = seed[0]
    row.update(kind=kind, data=name, genes=adata.n_vars, variant=variant)
    return [row]


def task_of(row: dict) -> tuple:
    genes = 0 if row["data"] == "planted_wide" or row["genes"] > 2000 else 2000
    if row["kind"] == "elbo":
        return ("elbo", row["data"], genes, row["variant"])
    return (row["kind"], row["data"], genes, row["variant"], row["seed"])


def fits_table(fits: pd.DataFrame) -> str:
    lines = [
        "| data | genes | use_batch_norm | fits | ARI | per seed | k-means on the latent "
        "means, ARI | clusters in use | epochs | time per fit (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (name, genes, variant), sub in fits.groupby(["data", "genes", "variant"], sort=False):
        sub = sub.sort_values("seed")
        lines.append(
            f"| {name} | {genes} | {variant} | {len(sub)} | {mean_std(sub['ari'])} | "
            + ", ".join(f"{a:.3f}" for a in sub["ari"])
            + f" | {mean_std(sub['kmeans_on_latent_ari'])} | "
            + ", ".join(str(int(n)) for n in sub["n_clusters_used"])
            + f" | {sub['epochs'].mean():.0f} | {sub['seconds'].mean():.0f} |"
        )
    return "\n".join(lines)


def elbo_table(elbos: pd.DataFrame, variants: list[str]) -> str:
    lines = [
        "| data | genes | " + " | ".join(f"{v}" for v in variants) + " |",
        "| --- | --- | " + " | ".join("---" for _ in variants) + " |",
    ]
    for name, sub in elbos.groupby("data", sort=False):
        by_variant = sub.set_index("variant")["elbo"]
        cells = [f"{by_variant[v]:.2f}" if v in by_variant else "" for v in variants]
        lines.append(f"| {name} | {sub['genes'].iloc[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def trajectory_table(trajectories: pd.DataFrame) -> str:
    lines = [
        "| use_batch_norm | epoch | training ELBO | validation ELBO | k-means on the latent "
        "means, ARI |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in trajectories.itertuples():
        for point in row.trajectory:
            lines.append(
                f"| {row.variant} | {point['epoch']} | {point['elbo_train']:.1f} | "
                f"{point['elbo_validation']:.1f} | {point['kmeans_ari']:.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    begin = time.perf_counter()
    tasks = [
        ("fit", name, genes, variant, seed)
        for name, genes in SETTINGS
        for variant in args.variants
        for seed in args.seeds
    ]
    tasks += [("elbo", name, 2000, variant) for name in ELBO_DATASETS for variant in args.variants]
    tasks += [("trajectory", "planted_wide", 0, variant, 0) for variant in args.variants]
    kept = []
    if args.resume and args.rows is not None and args.rows.exists():
        kept = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
        done = {task_of(row) for row in kept}
        tasks = [task for task in tasks if task not in done]
    # The wide fits last longest: start them first so that the pool's end is not one long fit.
    tasks.sort(key=lambda task: task[2] != 0)
    # A fresh process per fit, as in clustering.py.
    frame = pd.DataFrame(kept + run_all(tasks, args, run_task))
    order = {setting: i for i, setting in enumerate(SETTINGS)}
    frame["order"] = [
        order.get((d, 0 if g > 2000 or d == "planted_wide" else 2000), 99)
        for d, g in zip(frame["data"], frame["genes"], strict=True)
    ]
    frame["variant"] = pd.Categorical(frame["variant"], VARIANTS)
    frame = frame.sort_values(["order", "variant"])
    fits, elbos = frame[frame["kind"] == "fit"], frame[frame["kind"] == "elbo"]
    trajectories = frame[frame["kind"] == "trajectory"]
    command = "python3 benchmarks/batch_norm.py " + shlex.join(sys.argv[1:])
    text = f"""# Batch normalisation: in the encoder, in both networks, or nowhere

Produced by `{command.strip()}` on {datetime.date.today().isoformat()} ({args.jobs} fits at a
time with {args.threads or torch.get_num_threads()} torch thread(s) each, {platform.machine()}
CPU), torch {torch.__version__}, scvi-tools {scvi.__version__}, scvae {scvae.__version__}; the
run took {(time.perf_counter() - begin) / 60:.0f} min.

`scvae.GMVAE(adata, n_clusters=K, use_batch_norm=...)` with its defaults otherwise and
`train()`, one fit per seed ({", ".join(map(str, args.seeds))}); K = number of labels.
*genes*: the 2,000 most variable, or all of them (planted_wide: 3,000 cells x 15,000 genes,
3% non-zero, 10 planted types, from `clustering.py`). *ARI*: the clusters against the labels,
mean ± population standard deviation over seeds; *k-means on the latent means*: k-means (K,
`n_init=10`) on `obsm["X_scvae"]`; *clusters in use*: `model.n_clusters_used_` per seed.

## Clustering

{fits_table(fits)}

## Held-out ELBO per cell (NB, seed 0, higher is better)

The split and the 2,000 genes of `clustering.py`'s likelihood table: trained on 90% of the
cells, evaluated on the other 10%.

{elbo_table(elbos, [v for v in VARIANTS if v in args.variants])}

## A VAE on planted_wide, epoch by epoch

`scvae.VAE(adata, use_batch_norm=...)` (defaults otherwise: scvi-tools' KL warm-up over 400
epochs) trained {TRAJECTORY_EPOCHS} epochs on planted_wide (seed 0); every {TRAJECTORY_EVERY}
epochs the ELBOs per cell of the training and validation cells (as the history records them:
KL weight 1 whatever the warm-up's) and the ARI of k-means (K = 10) on the latent means of all
cells.

{trajectory_table(trajectories)}
"""
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
