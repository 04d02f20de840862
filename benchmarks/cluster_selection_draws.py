"""Does the number of clusters ``n_clusters="auto"`` chooses depend on which cells the
selection happens to evaluate?

The selection (``scvae.model._cluster_selection``) reads the likelihoods of up to a number of
cells per component, drawn at random where a component has more. For each data set and seed,
one default ``GMVAE(adata, n_clusters="auto")`` is trained; its selection is then made again
from the same fit with several draws of cells (seeds 1000, 1001, ...) and with several caps
on the cells per component. Per cap: the numbers of clusters chosen over the draws and the
ARI of the resulting clusters against the labels. Data loading and genes are
``clustering.py``'s (2,000 most variable genes).

Run from the repository root::

    python3 benchmarks/cluster_selection_draws.py
"""

import argparse
import datetime
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import scvi
import torch
from clustering import DATASETS, DEFAULT_DATA_DIR, LABEL_KEY, load
from sklearn.metrics import adjusted_rand_score

import scvae
from scvae.model._cluster_selection import CELLS_PER_COMPONENT

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--caps", type=int, nargs="+", default=[100, CELLS_PER_COMPONENT])
    parser.add_argument("--draws", type=int, default=6, help="draws of cells per cap")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks" / "cluster_selection_draws.md"
    )
    return parser.parse_args(argv)


def selections(adata, model, caps: list[int], draws: int) -> list[tuple[int, list, list]]:
    """For each cap: the clusters chosen and their ARI over ``draws`` draws of cells."""
    posterior = model._posterior(None, None, None, components=True)
    components = posterior[1][np.asarray(model.train_indices)].argmax(1)
    labels = adata.obs[LABEL_KEY].to_numpy()
    results = []
    for cap in caps:
        chosen, aris = [], []
        for draw in range(draws):
            scvi.settings.seed = 1000 + draw
            model._merge_components(components, cells_per_component=cap)
            model._annotate_registered("scvae", *model._finish_clusters(posterior))
            chosen.append(model.n_clusters)
            aris.append(adjusted_rand_score(labels, adata.obs["scvae_cluster"]))
        results.append((cap, chosen, aris))
    return results


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    scvi.settings.verbosity = 40
    lines = [
        "# The number of clusters chosen, over draws of the cells the selection evaluates",
        "",
        f"Produced by `python3 benchmarks/cluster_selection_draws.py "
        f"{shlex.join(sys.argv[1:])}` on {datetime.date.today()} ({platform.machine()} CPU, "
        f"{args.threads} torch threads), torch {torch.__version__}, scvi-tools "
        f'{scvi.__version__}. One default `GMVAE(adata, n_clusters="auto")` fit per data set '
        f"and seed (2,000 most variable genes); its cluster selection made again "
        f"{args.draws} times from the same fit, each time drawing the evaluated cells anew, "
        f"with at most *cap* cells per component (all of a component's cells when it has "
        f"fewer; scvae's default cap is {CELLS_PER_COMPONENT}).",
        "",
        "| data | labels | seed | cells per component (cap) | clusters chosen per draw "
        "| ARI per draw |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in args.datasets:
        for seed in args.seeds:
            adata = load(name, args.data_dir, 2000, None)
            scvi.settings.seed = seed
            scvae.setup_anndata(adata)
            model = scvae.GMVAE(adata, n_clusters="auto")
            model.train(enable_progress_bar=False)
            for cap, chosen, aris in selections(adata, model, args.caps, args.draws):
                lines.append(
                    f"| {name} | {adata.obs[LABEL_KEY].nunique()} | {seed} | {cap} | "
                    f"{', '.join(map(str, chosen))} | {' '.join(f'{a:.3f}' for a in aris)} |"
                )
                print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
