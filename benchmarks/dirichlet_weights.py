"""A sparse Dirichlet prior on the GMVAE's mixture weights, inside training: does it empty
components?

Issue 26's first candidate for ``n_clusters="auto"``: a generous K with a sparse Dirichlet
prior on the mixture weights, the components that empty out removed.
``auto_k_candidates.py`` measured it as a stand-in, on the latent means of a trained fit;
this script puts it inside the GMVAE's training. The GMVAE learns its weights by gradient;
here its prior is replaced by one whose weights are those of variational Bayes under a
Dirichlet(alpha) prior, as in scikit-learn's ``BayesianGaussianMixture``:
q(pi) = Dir(gamma), gamma_k = alpha + N_k with N_k the expected number of training cells in
component k, tracked from every training minibatch's q(y | x) by a stochastic update
(gamma <- (1 - rho) gamma + rho (alpha + N / B sum over the minibatch of q(k | x)),
rho = 0.05, about an epoch's memory), and the log weights that enter q(y | x) and the ELBO
are E_q log pi_k = digamma(gamma_k) - digamma(sum_j gamma_j). A component that empties out
gets a weight of about exp(-1 / alpha) and does not come back. The components are placed as
in a default fit (gamma reset to alpha + N x the placement's weights).

K = ``--max-clusters`` (30), alpha = 1 / K, default training otherwise, on
``clustering.py``'s training cells (90%); reported per data set and seed: the components
that hold cells (most probable component of a training cell), those that hold at least 1%
of them, and the ARI against the curated labels.

Run from the repository root::

    python3 benchmarks/dirichlet_weights.py --jobs 2 --threads 1
"""

import argparse
import datetime
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

import scvae
from scvae.model import training_cells
from scvae.module import MixturePrior

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks" / "dirichlet_weights.md"
#: Weight of each minibatch in the running expected counts.
RATE = 0.05


class DirichletWeightsPrior(MixturePrior):
    """The GMVAE's mixture prior with the variational-Bayes weights of a Dirichlet(alpha)
    prior, their expected counts updated from q(y | x) of every training minibatch."""

    def __init__(self, prior: MixturePrior, alpha: float, n_cells: int):
        super().__init__(prior.n_components, prior.n_latent)
        self.load_state_dict(prior.state_dict(), strict=False)  # means and scales
        self.alpha, self.n_cells = alpha, n_cells
        gamma = torch.full((prior.n_components,), alpha + n_cells / prior.n_components)
        self.register_buffer("gamma", gamma.to(prior.means))

    def log_weights(self) -> torch.Tensor:
        """E_q log pi_k under q(pi) = Dir(gamma)."""
        return torch.digamma(self.gamma) - torch.digamma(self.gamma.sum())

    @torch.no_grad()
    def set(self, means, scales, weights=None) -> None:
        """Place the components and restart the expected counts from the placement's weights."""
        super().set(means, scales)
        weights = np.ones(self.n_components) if weights is None else np.asarray(weights, float)
        gamma = self.alpha + self.n_cells * weights / weights.sum()
        self.gamma.copy_(torch.as_tensor(gamma, dtype=self.gamma.dtype))

    def kl_from(self, qz):
        """The KL terms; in training, also the update of the expected counts from the
        minibatch's responsibilities q(k | x)."""
        kl = super().kl_from(qz)
        if self.training and kl.dim() == 2:  # one draw of a training minibatch
            with torch.no_grad():
                responsibilities = torch.softmax(self.log_weights() - kl, dim=-1)
                counts = self.n_cells / kl.shape[0] * responsibilities.sum(0)
                self.gamma.mul_(1 - RATE).add_(RATE * (self.alpha + counts))
        return kl


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-clusters", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=1, help="fits at a time")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per fit")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--rows", type=Path, default=PAGE.parent / "rows" / f"{PAGE.stem}.jsonl")
    parser.add_argument("--out", type=Path, default=PAGE)
    return parser.parse_args(argv)


def run_fit(task: tuple, args: argparse.Namespace) -> list[dict]:
    """One GMVAE with Dirichlet weights on the training cells of a data set."""
    quiet(args.threads)
    name, seed = task
    train, _ = held_out_split(load(name, args.data_dir, 2000, None))
    labels = train.obs[LABEL_KEY]
    scvae.setup_anndata(train)
    scvi.settings.seed = seed
    begin = time.perf_counter()
    k = args.max_clusters
    model = scvae.GMVAE(train, n_clusters=k)
    n_training_cells = training_cells(train.n_obs, None)  # train()'s default split
    model.module.prior = DirichletWeightsPrior(model.module.prior, 1 / k, n_training_cells)
    model.train(enable_progress_bar=False, accelerator="cpu")
    clusters = model.predict()
    sizes = np.bincount(clusters, minlength=k)
    return [
        {
            "data": name,
            "seed": seed,
            "K": k,
            "labels": labels.nunique(),
            "holding_cells": int((sizes > 0).sum()),
            "holding_1pct": int((sizes >= 0.01 * len(clusters)).sum()),
            "ari": adjusted_rand_score(labels, clusters),
            "epochs": len(model.history["elbo_train"]),
            "seconds": time.perf_counter() - begin,
            "sizes": sorted(sizes.tolist(), reverse=True),
        }
    ]


def table(rows: pd.DataFrame) -> str:
    lines = [
        "| data | labels | range | seed | components holding cells | holding >= 1% | in range | "
        "ARI | epochs | cells per component, largest first |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows.itertuples():
        low, high = AUTO_K_RANGE[0] * row.labels, AUTO_K_RANGE[1] * row.labels
        hit = "yes" if in_k_range([row.holding_cells], row.labels)[0] else "no"
        lines.append(
            f"| {row.data} | {row.labels} | {low:.1f}-{high:.1f} | {row.seed} | "
            f"{row.holding_cells} of {row.K} | {row.holding_1pct} | {hit} | {row.ari:.3f} | "
            f"{row.epochs} | {' '.join(map(str, row.sizes))} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    begin = time.perf_counter()
    tasks = [(name, seed) for name in args.datasets for seed in args.seeds]
    rows = pd.DataFrame(run_all(tasks, args, run=run_fit))
    order = {name: i for i, name in enumerate(args.datasets)}
    rows = rows.sort_values(["data", "seed"], key=lambda c: c.map(order) if c.name == "data" else c)
    command = "python3 benchmarks/dirichlet_weights.py " + shlex.join(sys.argv[1:])
    text = f"""# Sparse Dirichlet weights inside the GMVAE's training

Produced by `{command.strip()}` on {datetime.date.today().isoformat()}, on the CPU
({args.jobs} fits at a time, {args.threads or torch.get_num_threads()} torch thread(s) each),
Python {platform.python_version()}, torch {torch.__version__}, scvi-tools {scvi.__version__},
scvae {scvae.__version__}; the run took {(time.perf_counter() - begin) / 60:.0f} min.
The method is in the script's docstring: K = {args.max_clusters}, Dirichlet concentration
1/{args.max_clusters}, default training on {", ".join(args.datasets)} (2,000 most variable
genes, 90% of the cells), seeds {", ".join(map(str, args.seeds))}. *In range*: the
components holding cells within [{AUTO_K_RANGE[0]}, {AUTO_K_RANGE[1]}] x the number of
labels (issue 26).

{table(rows)}
"""
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
