"""Speed of the negative binomial log-likelihood and its gradient on real minibatches.

scvae evaluates the lgamma terms of the NB log-pmf only at non-zero counts (they vanish at
zero), and the log-gamma and digamma differences there with Stirling's series. This script
times one forward and backward pass of the log-likelihood of a 128-cell minibatch of real
counts, the way training calls it (library-scaled means, per-gene dispersion, the summed
log-likelihood backpropagated), for three implementations of the same maths:

- ``scvae``: :class:`scvae.distributions.NegativeBinomial`;
- ``scvi-tools``: :class:`scvi.distributions.NegativeBinomial` (every term at every entry,
  with ``eps = 1e-8`` inside its logarithms);
- ``dense``: the exact log-pmf written out with ``torch.lgamma`` at every entry.

Each repeat draws a fresh minibatch and random parameters and times every implementation on it,
in alternating order; the table gives the median time per evaluation and the median, over the
repeats, of each implementation's time relative to scvae's in the same repeat. ``--components
10`` evaluates the means of 10 GMVAE components at once (the counts broadcast over them).

Usage (from the repository root)::

    python benchmarks/likelihood_speed.py [--repeats 30] [--components 1 10] [--out FILE]
"""

import argparse
import datetime
import platform
import time
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
import scvi
import torch

from scvae.distributions import NegativeBinomial

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    "pbmc10x": "pbmc10x_4271_top2000.h5ad",
    "mouse_bladder": "mouse_bladder_2100.h5ad",
}
BATCH_SIZE = 128


def dense_log_prob(x: torch.Tensor, log_mu: torch.Tensor, log_theta: torch.Tensor):
    """The NB log-pmf with every term at every entry, in log space."""
    theta = log_theta.exp()
    return (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
        - theta * torch.nn.functional.softplus(log_mu - log_theta)
        - x * torch.nn.functional.softplus(log_theta - log_mu)
    )


IMPLEMENTATIONS = {
    "scvae": lambda x, log_mu, log_theta: NegativeBinomial(log_mu, log_theta).log_prob(x),
    "scvi-tools": lambda x, log_mu, log_theta: scvi.distributions.NegativeBinomial(
        mu=log_mu.exp(), theta=log_theta.exp()
    ).log_prob(x),
    "dense": dense_log_prob,
}


def time_once(log_prob, x, logits, library, log_theta, n_calls: int) -> float:
    """Seconds per forward and backward pass, averaged over ``n_calls``."""
    start = time.perf_counter()
    for _ in range(n_calls):
        log_mu = torch.log_softmax(logits, dim=-1) + library.log()
        log_prob(x, log_mu, log_theta).sum().backward()
    return (time.perf_counter() - start) / n_calls


def measure(counts: sp.csr_matrix, n_components: int, repeats: int, n_calls: int, seed: int):
    """Per-implementation seconds per call and per-repeat ratios to scvae."""
    rng = np.random.default_rng(seed)
    seconds = {name: [] for name in IMPLEMENTATIONS}
    for repeat in range(repeats + 1):  # the first repeat warms up and is not kept
        rows = rng.choice(counts.shape[0], BATCH_SIZE, replace=False)
        x = torch.as_tensor(counts[rows].toarray())
        library = x.sum(-1, keepdim=True).clamp(min=1)
        shape = (n_components, *x.shape) if n_components > 1 else x.shape
        logits = torch.randn(shape, generator=torch.Generator().manual_seed(repeat))
        logits.requires_grad_()
        log_theta = torch.randn(x.shape[1]).requires_grad_()
        names = list(IMPLEMENTATIONS)
        for name in names if repeat % 2 else reversed(names):
            elapsed = time_once(IMPLEMENTATIONS[name], x, logits, library, log_theta, n_calls)
            if repeat:
                seconds[name].append(elapsed)
    return {name: np.array(values) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--calls", type=int, default=5, help="evaluations timed per repeat")
    parser.add_argument("--components", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/likelihood_speed.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for name, file in DATASETS.items():
        counts = sp.csr_matrix(ad.read_h5ad(args.data_dir / file).X, dtype=np.float32)
        for n_components in args.components:
            calls = max(1, args.calls // n_components)
            seconds = measure(counts, n_components, args.repeats, calls, args.seed)
            ratios = {k: np.median(v / seconds["scvae"]) for k, v in seconds.items()}
            median_ms = {k: 1e3 * np.median(v) for k, v in seconds.items()}
            print(name, n_components, median_ms, ratios, flush=True)
            rows.append((name, counts.shape, counts.nnz / np.prod(counts.shape), n_components,
                         median_ms, ratios))  # fmt: skip

    lines = [
        "# Speed of the negative binomial log-likelihood",
        "",
        f"Produced by `python benchmarks/likelihood_speed.py --repeats {args.repeats} "
        f"--components {' '.join(map(str, args.components))}` on "
        f"{datetime.date.today().isoformat()}, {platform.machine()} CPU ({args.threads} torch "
        f"threads), torch {torch.__version__}, scvi-tools {scvi.__version__}. One forward and "
        f"backward pass of the summed log-likelihood of a {BATCH_SIZE}-cell minibatch of real "
        "counts (library-scaled means from random logits, per-gene dispersion); median over "
        f"{args.repeats} repeats, each on a fresh minibatch, implementations in alternating "
        "order. The ratio columns are the median, over the repeats, of an implementation's time "
        "divided by scvae's in the same repeat (above 1: slower than scvae).",
        "",
        "| data | cells x genes | non-zero | components | scvae ms | scvi-tools ms | dense ms "
        "| scvi-tools / scvae | dense / scvae |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, shape, density, n_components, median_ms, ratios in rows:
        lines.append(
            f"| {name} | {shape[0]} x {shape[1]} | {density:.1%} | {n_components} "
            f"| {median_ms['scvae']:.2f} | {median_ms['scvi-tools']:.2f} "
            f"| {median_ms['dense']:.2f} | {ratios['scvi-tools']:.2f} | {ratios['dense']:.2f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
