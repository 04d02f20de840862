"""Is a seeded fit reproducible? The same GMVAE fit (mouse_bladder, ``n_clusters="auto"``,
seed 0, ``clustering.py``'s data and fit) run alone in fresh processes, and run in a process
that first fitted another data set, with and without ``MKL_CBWR=COMPATIBLE``.

Each scenario is its own Python process (this script with ``--scenario``), so that its
environment variables reach MKL before torch loads it. Two scenarios run at a time, one torch
thread each. Run from the repository root::

    python3 benchmarks/reproducibility.py
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = "mouse_bladder"
#: (name, data set fitted first in the same process or None, MKL_CBWR or None)
SCENARIOS = (
    ("fresh process", None, None),
    ("fresh process, again", None, None),
    ("after a paul15 fit", "paul15", None),
    ("after a pbmc10x fit", "pbmc10x", None),
    ("after a paul15 fit, MKL_CBWR=COMPATIBLE", "paul15", "COMPATIBLE"),
    ("after a pbmc10x fit, MKL_CBWR=COMPATIBLE", "pbmc10x", "COMPATIBLE"),
)
#: Training ELBOs shown per fit: the first few epochs, where the runs part.
SHOWN_EPOCHS = 3


def run_scenario(first: str | None) -> dict:
    """In this process: fit ``first`` (if any), then the target; the target's scores."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import clustering
    import scvi
    from sklearn.metrics import adjusted_rand_score

    import scvae

    clustering.quiet(1)
    for name in [first, TARGET] if first else [TARGET]:
        adata = clustering.load(name, clustering.DEFAULT_DATA_DIR, 2000, None)
        scvi.settings.seed = 0
        scvae.setup_anndata(adata)
        model = scvae.GMVAE(adata, n_clusters="auto")
        model.train(enable_progress_bar=False, accelerator="cpu")
    elbo = model.history["elbo_train"].iloc[:, 0]
    return {
        "ari": adjusted_rand_score(adata.obs[clustering.LABEL_KEY], adata.obs["scvae_cluster"]),
        "n_clusters": model.n_clusters,
        "epochs": len(elbo),
        "elbo_first_epochs": elbo.iloc[:SHOWN_EPOCHS].tolist(),
    }


def launch(scenario: tuple) -> dict:
    name, first, cbwr = scenario
    env = dict(os.environ)
    env.pop("MKL_CBWR", None)
    if cbwr:
        env["MKL_CBWR"] = cbwr
    command = [sys.executable, __file__, "--scenario", first or ""]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return {"scenario": name, **json.loads(result.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "benchmarks" / "reproducibility.md"
    )
    args = parser.parse_args()
    if args.scenario is not None:
        print(json.dumps(run_scenario(args.scenario or None)))
        return
    begin = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(launch, SCENARIOS))
    lines = [
        f"| scenario | ARI | clusters | epochs | training ELBO, epochs 1-{SHOWN_EPOCHS} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        elbos = ", ".join(f"{e:.4f}" for e in row["elbo_first_epochs"])
        lines.append(
            f"| {row['scenario']} | {row['ari']:.3f} | {row['n_clusters']} | {row['epochs']} "
            f"| {elbos} |"
        )
    import torch

    import scvae

    text = f"""# Reproducibility of a seeded fit

Produced by `python3 benchmarks/reproducibility.py` on {datetime.date.today().isoformat()}
(torch {torch.__version__}, scvae {scvae.__version__}, CPU, one torch thread per process, two
processes at a time); the run took {(time.perf_counter() - begin) / 60:.0f} min.

The same fit each time: `scvae.GMVAE(adata, n_clusters="auto")`, `train()`, seed 0, on
{TARGET} (2,000 most variable genes, `clustering.py`'s data). Each scenario is a fresh Python
process; "after a ... fit" fits that data set (seed 0, `n_clusters="auto"`) first in the same
process. Same seed and same initial weights everywhere.

{chr(10).join(lines)}
"""
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
