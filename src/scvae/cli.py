"""Command line interface: ``scvae train``, ``scvae evaluate`` and ``scvae demo``.

Run ``scvae --help`` or ``scvae SUBCOMMAND --help`` for the options.
"""

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scvae._constants import CLUSTER_KEY, LATENT_KEY, LIKELIHOODS

if TYPE_CHECKING:
    from anndata import AnnData

    from scvae.model import ScvaeModel

#: Exceptions reported as one line on stderr with exit status 2 (anything else is a bug).
USER_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, KeyError)
#: Number of GMVAE components of ``scvae demo``: the 19 clusters published by Paul et al.
DEMO_N_CLUSTERS = 19
#: Training epochs of ``scvae demo``: a few minutes on two laptop CPU cores.
DEMO_MAX_EPOCHS = 15
#: Genes kept by ``scvae demo``: the most variable ones (of 3451), as in scanpy's paul15 tutorial.
DEMO_N_GENES = 1000
#: Importance samples per held-out cell for the demo's log-likelihood (K=19 makes each costly).
DEMO_N_MC_SAMPLES = 20
#: Fraction of the cells that ``scvae demo`` holds out to score the model.
DEMO_HELDOUT_FRACTION = 0.1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scvae`` command line.

    Parameters
    ----------
    argv
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    Exit status: 0 on success (and for ``--help``), 2 on a usage or input error, which is
    reported as one line on stderr rather than a traceback.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed by argparse
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        args.run(args)
    except USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"scvae {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scvae",
        description="Deep generative models (VAE, Gaussian-mixture VAE) of raw single-cell counts.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_demo(commands)
    return parser


def _add_command(
    commands: argparse._SubParsersAction, name: str, run: Callable, summary: str, details: str
) -> argparse.ArgumentParser:
    command = commands.add_parser(
        name,
        help=summary,
        description=f"{summary} {details}",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    command.set_defaults(run=run)
    return command


def _add_train(commands: argparse._SubParsersAction) -> None:
    command = _add_command(
        commands,
        "train",
        _train,
        "Train a VAE or GMVAE on the raw counts of an h5ad file.",
        f"Writes OUTPUT: the input plus obsm['{LATENT_KEY}'] and, for a GMVAE, "
        f"obs['{CLUSTER_KEY}'], obsm['{CLUSTER_KEY}_probabilities'] and "
        f"obs['{CLUSTER_KEY}_confidence']. The input file is never modified.",
    )
    command.add_argument("input", metavar="IN.h5ad", help="AnnData with raw counts")
    command.add_argument("-o", "--output", metavar="OUT.h5ad", required=True, help="output")
    command.add_argument("--model", choices=("vae", "gmvae"), default="vae", help="model type")
    command.add_argument("--likelihood", choices=LIKELIHOODS, default="nb", help="count model")
    command.add_argument(
        "--n-clusters",
        type=int,
        metavar="K",
        help=f"GMVAE components (default {_gmvae_default_clusters()}; GMVAE only)",
    )
    command.add_argument(
        "--n-restarts",
        type=int,
        metavar="N",
        help="GMVAE fits from different random weights, of which the one whose clusters agree "
        "most with the others' is kept (default 1; GMVAE only; N times the training time)",
    )
    command.add_argument("--n-latent", type=int, default=10, metavar="N", help="latent dimension")
    command.add_argument("--layer", help="layer with the raw counts (default: X)")
    command.add_argument("--batch-key", metavar="KEY", help="obs column of the batches")
    command.add_argument(
        "--max-epochs", type=int, metavar="N", help="epochs (default: scvi-tools' heuristic)"
    )
    command.add_argument("--seed", type=int, default=0, help="random seed")
    command.add_argument("--save-model", metavar="DIR", help="also save the trained model here")
    command.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUTPUT or model DIR"
    )
    _add_progress_option(command)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    command = _add_command(
        commands,
        "evaluate",
        _evaluate,
        "Score a saved model on the cells of an h5ad file (held-out cells, typically).",
        "Prints a JSON object: model (VAE or GMVAE, read from the saved model), n_cells, elbo "
        "(mean ELBO per cell, nats), log_likelihood (importance-weighted estimate of log p(x) "
        "per cell, nats) and, for a GMVAE with --labels-key, ari and nmi of its clusters.",
    )
    command.add_argument("model_dir", metavar="MODEL_DIR", help="directory of a saved model")
    command.add_argument("input", metavar="IN.h5ad", help="AnnData with the model's genes")
    command.add_argument("--labels-key", metavar="KEY", help="obs column of known labels")
    command.add_argument(
        "--n-mc-samples", type=int, default=100, metavar="N", help="importance samples per cell"
    )


def _add_demo(commands: argparse._SubParsersAction) -> None:
    command = _add_command(
        commands,
        "demo",
        _demo,
        "Cluster the bundled Paul et al. (2015) myeloid progenitors with a GMVAE.",
        f"Keeps the {DEMO_N_GENES} most variable genes (of 3451; by dispersion of the "
        "log-normalised counts, the model itself sees raw counts) and trains a GMVAE with a "
        "negative binomial likelihood on 90% of the 2730 cells "
        "(10% held out for the held-out ELBO and log-likelihood), with "
        f"K={DEMO_N_CLUSTERS} components by default: as many as the clusters published by "
        "Paul et al., so that the adjusted Rand index and normalised mutual information "
        "against them compare clusterings of the same resolution. Writes, into DIR: "
        "paul15_scvae.h5ad (all cells, annotated), umap.png (UMAP of the latent space by "
        "GMVAE cluster and by published label), training_curves.png and metrics.json. "
        "Takes a few minutes on a laptop CPU.",
    )
    command.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default="scvae_demo",
        help="output directory (files in it are replaced)",
    )
    command.add_argument(
        "--max-epochs", type=int, default=DEMO_MAX_EPOCHS, metavar="N", help="training epochs"
    )
    command.add_argument(
        "--n-clusters", type=int, default=DEMO_N_CLUSTERS, metavar="K", help="GMVAE components"
    )
    command.add_argument(
        "--n-genes", type=int, default=DEMO_N_GENES, metavar="N", help="genes kept; 0: all"
    )
    command.add_argument("--seed", type=int, default=0, help="random seed")
    _add_progress_option(command)


def _add_progress_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--no-progress-bar", action="store_true", help="do not show the training progress bar"
    )


def _gmvae_default_clusters() -> int:
    from scvae.model import GMVAE

    return inspect.signature(GMVAE).parameters["n_clusters"].default


def _existing_file(path: str) -> Path:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return Path(path)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")


def _train_kwargs(args: argparse.Namespace) -> dict:
    return {"max_epochs": args.max_epochs, "enable_progress_bar": not args.no_progress_bar}


def _train(args: argparse.Namespace) -> None:
    import anndata as ad

    from scvae.tl._workflow import fit_model, strip_registration

    source, output = _existing_file(args.input), Path(args.output)
    if output.resolve() == source.resolve():
        raise ValueError("the output would overwrite the input; choose another -o")
    _refuse_existing(output, args.overwrite)
    if args.save_model is not None:
        _refuse_existing(Path(args.save_model), args.overwrite)
    train_kwargs, n_clusters = _train_kwargs(args), None
    if args.model == "vae":
        for option in ("n_clusters", "n_restarts"):
            if getattr(args, option) is not None:
                raise ValueError(f"--{option.replace('_', '-')} is an option of --model gmvae")
    else:
        n_clusters = args.n_clusters if args.n_clusters is not None else _gmvae_default_clusters()
        if args.n_restarts is not None:
            if args.n_restarts < 1:
                raise ValueError(f"--n-restarts must be at least 1, got {args.n_restarts}")
            train_kwargs["n_restarts"] = args.n_restarts
    adata = ad.read_h5ad(source)
    model = fit_model(
        adata,
        n_clusters=n_clusters,
        layer=args.layer,
        batch_key=args.batch_key,
        seed=args.seed,
        train_kwargs=train_kwargs,
        likelihood=args.likelihood,
        n_latent=args.n_latent,
    )
    if getattr(model, "restart_agreements_", None) is not None:
        agreements = ", ".join(f"{value:.3f}" for value in model.restart_agreements_)
        message = f"restarts' mean ARI with the other restarts: {agreements} (most agreeing kept)"
        print(message, file=sys.stderr)
    if args.save_model is not None:
        model.save(args.save_model, overwrite=args.overwrite, save_anndata=False)
    strip_registration(adata).write_h5ad(output, compression="gzip")
    print(f"wrote {output}", file=sys.stderr)


def load_model(model_dir: str | Path, adata: "AnnData") -> "ScvaeModel":
    """Load a saved :class:`~scvae.VAE` or :class:`~scvae.GMVAE`, whichever it is.

    The class is read from the registry that scvi-tools saves with the model.

    Parameters
    ----------
    model_dir
        Directory written by ``model.save``.
    adata
        AnnData with the model's genes, registered by transfer from the saved setup.

    Returns
    -------
    The loaded model.
    """
    from scvi.model.base import BaseModelClass

    from scvae.model import GMVAE, VAE

    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory")
    name = BaseModelClass.load_registry(str(model_dir))["model_name"]
    classes = {cls.__name__: cls for cls in (VAE, GMVAE)}
    if name not in classes:
        raise ValueError(f"{model_dir} holds a {name} model, not one of {sorted(classes)}")
    return classes[name].load(str(model_dir), adata=adata)


def _evaluate(args: argparse.Namespace) -> None:
    import anndata as ad

    from scvae.tl import evaluate_model

    adata = ad.read_h5ad(_existing_file(args.input))
    if args.labels_key is not None and args.labels_key not in adata.obs:
        raise KeyError(f"--labels-key {args.labels_key!r} is not a column of obs")
    model = load_model(args.model_dir, adata)
    metrics = evaluate_model(
        model, adata, labels_key=args.labels_key, n_mc_samples=args.n_mc_samples
    )
    print(json.dumps(metrics, indent=2))


def _most_variable_genes(adata: "AnnData", n_genes: int) -> "AnnData":
    """``adata`` restricted to its ``n_genes`` most variable genes (all when 0 or more)."""
    import scanpy as sc

    if n_genes <= 0 or n_genes >= adata.n_vars:
        return adata
    normalised = adata.copy()
    sc.pp.normalize_total(normalised)
    sc.pp.log1p(normalised)
    sc.pp.highly_variable_genes(normalised, n_top_genes=n_genes, flavor="seurat")
    return adata[:, normalised.var["highly_variable"].to_numpy()].copy()


def _demo(args: argparse.Namespace) -> None:
    import matplotlib.pyplot as plt
    import scanpy as sc

    from scvae import datasets, pl
    from scvae.tl._workflow import (
        clustering_scores,
        evaluate_model,
        fit_model,
        heldout_split,
        strip_registration,
        unregistered_copy,
    )

    start = time.perf_counter()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    adata = _most_variable_genes(datasets.paul15(), args.n_genes)
    train_idx, heldout_idx = heldout_split(adata.n_obs, DEMO_HELDOUT_FRACTION, args.seed)
    model = fit_model(
        unregistered_copy(adata, train_idx),
        n_clusters=args.n_clusters,
        seed=args.seed,
        train_kwargs=_train_kwargs(args),
        likelihood="nb",
    )
    training_seconds = time.perf_counter() - start
    heldout = evaluate_model(
        model, unregistered_copy(adata, heldout_idx), n_mc_samples=DEMO_N_MC_SAMPLES
    )
    model.annotate(adata)
    metrics = {
        "model": heldout["model"],
        "likelihood": "nb",
        "n_clusters": args.n_clusters,
        "max_epochs": args.max_epochs,
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_train": len(train_idx),
        "n_heldout": heldout["n_cells"],
        "heldout_elbo": heldout["elbo"],
        "heldout_log_likelihood": heldout["log_likelihood"],
        "n_clusters_used": int(adata.obs[CLUSTER_KEY].nunique()),
        **clustering_scores(adata.obs["label"], adata.obs[CLUSTER_KEY]),
        "training_seconds": round(training_seconds, 1),
    }

    sc.pp.neighbors(adata, use_rep=LATENT_KEY, random_state=args.seed)
    sc.tl.umap(adata, random_state=args.seed)
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    for ax, key, title in zip(
        axes,
        (CLUSTER_KEY, "label"),
        (f"GMVAE clusters (K={args.n_clusters})", "published clusters (Paul et al. 2015)"),
        strict=True,
    ):
        sc.pl.umap(adata, color=key, ax=ax, show=False, title=title, legend_fontsize=7)
    figure.savefig(output / "umap.png", dpi=150, bbox_inches="tight")
    plt.close(figure)
    axes = pl.training_curves(model, save=output / "training_curves.png")
    plt.close(axes[0].get_figure())

    strip_registration(adata).write_h5ad(output / "paul15_scvae.h5ad", compression="gzip")
    metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    print(f"wrote {output}/: paul15_scvae.h5ad, umap.png, training_curves.png, metrics.json")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
