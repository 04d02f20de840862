"""The number of clusters from the data: three ways of choosing it, on the same fits.

Issue 26 names three candidates for ``n_clusters="auto"``; this script measures them side
by side on the four shared data sets. Per data set and seed, default fixed-K GMVAEs are
trained on a grid of K (``--grid``) on 90% of the cells (the held-out 10% are
``clustering.py``'s split, the same for every seed and K), and the number of clusters is
chosen

* **by held-out fit**: the K with the highest held-out ELBO per cell, or importance-weighted
  log-likelihood (``get_marginal_ll``), and the smallest K within one paired standard error
  of that best (the one-standard-error rule, which prefers the simpler model where the data
  cannot tell them apart). The grid costs one fit per K;
* **by sparse mixture weights**: a Bayesian Gaussian mixture with a sparse Dirichlet prior on
  its weights (scikit-learn's ``BayesianGaussianMixture``, ``max(grid)`` components, weight
  concentration ``1 / max(grid)``, diagonal covariances), fitted to the latent means of the
  training cells of the ``max(grid)``-component GMVAE; its components that keep cells are
  the clusters. A stand-in for the same prior inside the GMVAE, which trains its weights
  by gradient and has no such prior: it asks whether the latent density the GMVAE learns
  supports the labelled number of cell types;
* **by merging** (scvae's ``n_clusters="auto"``): the ``max(grid)``-component fit's
  hierarchy cut at the default separability (``model.cluster_selection_.cut``), the clusters
  an auto fit with ``max_clusters=max(grid)`` chooses on these cells; each cell in the
  cluster of its most probable component, as ``clustering.py``'s threshold table puts it
  (an auto fit sums the probabilities of each cluster's components, which moved the ARI by
  up to 0.003 there).

Each choice is scored by its ARI against the curated labels on the training cells and
whether it lands within [0.6, 1.6] x the number of labels (issue 26). A held-out choice's
number of clusters is the K of its fit; the cost column counts training only (the
held-out scoring is left out). Data loading and
genes are ``clustering.py``'s (2,000 most variable genes).

Run from the repository root (rows are appended to ``--rows``; ``--resume`` skips the fits
already there)::

    python3 benchmarks/auto_k_candidates.py --jobs 2 --threads 1
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
    AUTO_K_RANGE,
    DATASETS,
    DEFAULT_DATA_DIR,
    LABEL_KEY,
    held_out_split,
    in_k_range,
    load,
    quiet,
    run_all,
)
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

import scvae

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks" / "auto_k_candidates.md"
#: Importance samples per held-out cell for the marginal log-likelihood.
MC_SAMPLES = 100


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--grid", type=int, nargs="+", default=[3, 5, 8, 12, 16, 20, 25, 30])
    parser.add_argument("--jobs", type=int, default=1, help="fits at a time")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per fit")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--rows", type=Path, default=PAGE.parent / "rows" / f"{PAGE.stem}.jsonl")
    parser.add_argument("--resume", action="store_true", help="keep the rows already written")
    parser.add_argument("--out", type=Path, default=PAGE)
    return parser.parse_args(argv)


def sparse_dirichlet_clusters(latent: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """Clusters of a Bayesian Gaussian mixture with sparse Dirichlet weights on ``latent``."""
    mixture = BayesianGaussianMixture(
        n_components=n_components,
        covariance_type="diag",
        weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=1 / n_components,
        max_iter=1000,
        random_state=seed,
    )
    return mixture.fit(latent).predict(latent)


def run_fit(task: tuple, args: argparse.Namespace) -> list[dict]:
    """One default fixed-K GMVAE on the training cells: held-out scores per cell, ARI; at the
    largest K of the grid also the sparse-Dirichlet and merging choices."""
    quiet(args.threads)
    name, seed, k = task
    train, test = held_out_split(load(name, args.data_dir, 2000, None))
    labels = train.obs[LABEL_KEY]
    scvae.setup_anndata(train)
    scvae.setup_anndata(test)
    scvi.settings.seed = seed
    begin = time.perf_counter()
    model = scvae.GMVAE(train, n_clusters=k)
    model.train(enable_progress_bar=False, accelerator="cpu")
    seconds = time.perf_counter() - begin
    torch.manual_seed(0)
    elbo = model.get_elbo(test, return_mean=False)
    marginal = model.get_marginal_ll(test, n_mc_samples=MC_SAMPLES, return_mean=False)
    row = {
        "data": name,
        "seed": seed,
        "K": k,
        "labels": labels.nunique(),
        "ari": adjusted_rand_score(labels, train.obs["scvae_cluster"]),
        "seconds": seconds,
        "elbo": np.round(np.asarray(elbo, dtype=float), 3).tolist(),
        "marginal_ll": np.round(np.asarray(marginal, dtype=float), 3).tolist(),
    }
    if k == max(args.grid):
        cut = model.cluster_selection_.cut(threshold=scvae.model.SEPARABILITY_THRESHOLD)
        merged = cut.component_clusters[model.predict(components=True)]
        begin = time.perf_counter()
        dirichlet = sparse_dirichlet_clusters(train.obsm["X_scvae"], k, seed)
        row.update(
            merged_clusters=len(np.unique(merged)),
            merged_ari=adjusted_rand_score(labels, merged),
            dirichlet_clusters=len(np.unique(dirichlet)),
            dirichlet_ari=adjusted_rand_score(labels, dirichlet),
            dirichlet_seconds=time.perf_counter() - begin,
        )
    return [row]


def held_out_choice(fits: pd.DataFrame, score: str) -> tuple[int, int]:
    """The K with the best mean held-out ``score`` and the smallest K within one paired
    standard error (over the held-out cells) of it."""
    fits = fits.sort_values("K")
    values = np.array(fits[score].tolist())  # (K values, held-out cells)
    best = int(values.mean(1).argmax())
    differences = values - values[best]
    errors = differences.std(1, ddof=1) / np.sqrt(values.shape[1])
    within = np.flatnonzero(differences.mean(1) >= -errors)
    ks = fits["K"].to_numpy()
    return int(ks[best]), int(ks[within[0]])


def choices(rows: pd.DataFrame, grid: list[int]) -> pd.DataFrame:
    """Per data set and seed, the K (and its ARI) each candidate chooses."""
    out = []
    for (name, seed), fits in rows.groupby(["data", "seed"], sort=False):
        fits = fits[fits["K"].isin(grid)]
        if set(fits["K"]) != set(grid):
            continue
        ari = dict(zip(fits["K"], fits["ari"], strict=True))
        largest = fits[fits["K"] == max(grid)].iloc[0]
        mean_seconds = fits["seconds"].mean()
        picks = {}  # candidate: (clusters, ARI, cost in fits)
        for score, label in (("elbo", "held-out ELBO"), ("marginal_ll", "held-out log p(x)")):
            best, simplest = held_out_choice(fits, score)
            picks[f"{label}, best"] = (best, ari[best], len(grid))
            picks[f"{label}, one-SE rule"] = (simplest, ari[simplest], len(grid))
        picks["sparse Dirichlet weights"] = (
            largest["dirichlet_clusters"],
            largest["dirichlet_ari"],
            1 + largest["dirichlet_seconds"] / mean_seconds,
        )
        picks["merging (scvae's auto)"] = (
            largest["merged_clusters"],
            largest["merged_ari"],
            largest["seconds"] / mean_seconds,
        )
        for candidate, (k, score, cost) in picks.items():
            out.append(
                dict(
                    data=name,
                    seed=seed,
                    labels=largest["labels"],
                    candidate=candidate,
                    clusters=int(k),
                    ari=score,
                    cost=cost,
                )
            )
    return pd.DataFrame(out)


def candidate_table(picked: pd.DataFrame) -> str:
    lines = [
        "| data | labels | range | candidate | clusters per seed | in range | ARI | "
        "cost (fits of the grid's mean time) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (name, candidate), group in picked.groupby(["data", "candidate"], sort=False):
        labels = int(group["labels"].iloc[0])
        low, high = AUTO_K_RANGE[0] * labels, AUTO_K_RANGE[1] * labels
        hits = int(in_k_range(group["clusters"], labels).sum())
        lines.append(
            f"| {name} | {labels} | {low:.1f}-{high:.1f} | {candidate} | "
            f"{', '.join(map(str, group['clusters']))} | {hits} of {len(group)} | "
            f"{group['ari'].mean():.3f} ± {group['ari'].std(ddof=0):.3f} | "
            f"{group['cost'].mean():.1f} |"
        )
    return "\n".join(lines)


def curve_table(rows: pd.DataFrame, grid: list[int]) -> str:
    lines = [
        "| data | seed | score | " + " | ".join(f"K={k}" for k in grid) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in grid) + " |",
    ]
    for (name, seed), fits in rows.groupby(["data", "seed"], sort=False):
        fits = fits.set_index("K")
        for score, label in (
            ("elbo", "held-out ELBO"),
            ("marginal_ll", "held-out log p(x)"),
            ("ari", "ARI (training cells)"),
        ):
            values = [fits.loc[k, score] if k in fits.index else np.nan for k in grid]
            cells = [
                ""
                if np.isscalar(v) and np.isnan(v)
                else f"{np.mean(v):.{3 if score == 'ari' else 1}f}"
                for v in values
            ]
            lines.append(f"| {name} | {seed} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    quiet(args.threads)
    kept = []
    if args.resume and args.rows.exists():
        kept = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
    elif args.rows.exists():
        args.rows.unlink()
    # A row of the largest K counts as done only if it holds the merging and Dirichlet choices.
    done = {
        (row["data"], row["seed"], row["K"])
        for row in kept
        if row["K"] != max(args.grid) or "merged_clusters" in row
    }
    tasks = [
        (name, seed, k)
        for name in args.datasets
        for seed in args.seeds
        for k in sorted(args.grid, reverse=True)
        if (name, seed, k) not in done
    ]
    rows = pd.DataFrame(kept + run_all(tasks, args, run=run_fit))
    rows = rows[rows["data"].isin(args.datasets) & rows["seed"].isin(args.seeds)]
    rows = rows[rows["K"].isin(args.grid)].drop_duplicates(["data", "seed", "K"], keep="last")
    rows = rows.sort_values(
        ["data", "seed", "K"], key=lambda c: c.map(list(DATASETS).index) if c.name == "data" else c
    )
    picked = choices(rows, args.grid)
    if picked.empty:
        raise SystemExit(f"No data set and seed has a fit at every K of the grid in {args.rows}.")
    text = f"""# The number of clusters from the data: three candidates on the same fits

Produced by `python3 benchmarks/auto_k_candidates.py {shlex.join(sys.argv[1:])}` on
{datetime.date.today()} ({platform.machine()} CPU, {args.jobs} fits at a time with
{args.threads or torch.get_num_threads()} torch thread(s) each; {len(rows)} fits, whose
training took {rows["seconds"].sum() / 60:.0f} min in all), torch {torch.__version__}, scvi-tools
{scvi.__version__}, scvae {scvae.__version__}. Per data set and seed, default fixed-K GMVAEs at
K = {", ".join(map(str, args.grid))} on 90% of the cells (2,000 genes); the held-out 10% score
them. The script's docstring describes the candidates. ARI against the curated labels, on
the training cells; *range*: [{AUTO_K_RANGE[0]}, {AUTO_K_RANGE[1]}] x the number of labels.

## The candidates' choices

{candidate_table(picked)}

## Held-out scores per cell and ARI of every fit

{curve_table(rows, args.grid)}
"""
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
