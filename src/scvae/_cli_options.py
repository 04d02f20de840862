"""The ``scvae`` command line's options: its parser, its argument types and the values of
its choices, without torch, so that ``scvae --help`` is instant (see :mod:`scvae.cli`)."""

import argparse
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

#: Names of ``--likelihood`` (those of :data:`scvae.distributions.LIKELIHOODS`, listed here so
#: that ``--help`` needs no torch; a test keeps the two equal).
LIKELIHOOD_NAMES = ("poisson", "nb", "zip", "zinb", "constrained_poisson")
#: Values of ``--batch-norm``: the placements ``use_batch_norm`` names (kept equal by a test).
BATCH_NORM_PLACES = ("none", "encoder", "decoder", "both")
#: ``scvae.GMVAE``'s default number of components, for ``--help`` (kept equal by a test).
GMVAE_DEFAULT_CLUSTERS = 10


def cluster_count(text: str) -> int | str:
    """``--n-clusters``: a positive integer, or ``auto`` (the model chooses)."""
    return text if text == "auto" else _integer(text, 1, "a positive integer or 'auto'")


def gene_count(text: str) -> int:
    """``--n-genes``: 0 (all genes) or a positive integer."""
    return _integer(text, 0, "0 (all genes) or a positive integer")


def _integer(text: str, least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def seed(text: str) -> int:
    """``--seed``: an integer from 0 to 2**32 - 1 (numpy's range of seeds)."""
    value = _integer(text, 0, "an integer from 0 to 4294967295")
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 4294967295, got {text!r}")
    return value


class _VersionAction(argparse.Action):
    """``--version``: scvae's and torch's versions, and whether torch sees a GPU."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        import torch

        if torch.cuda.is_available():
            names = ", ".join(
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            )
            device = f"GPU found ({names}): models train on it"
        elif torch.backends.mps.is_available():
            device = "Apple GPU (MPS) found: pass accelerator='mps' to train on it"
        else:
            device = "no GPU found: models train on the CPU"
        print(f"scvae-torch {_version('scvae-torch')}")
        print(f"torch {torch.__version__}, scvi-tools {_version('scvi-tools')}: {device}")
        parser.exit()


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_parser(runs: dict[str, Callable]) -> argparse.ArgumentParser:
    """The ``scvae`` parser; each command's ``run`` default is ``runs[command]``."""
    parser = argparse.ArgumentParser(
        prog="scvae",
        description="Deep generative models (VAE, Gaussian-mixture VAE) of raw single-cell counts.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="versions, and whether a GPU is found"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands, runs["train"])
    _add_evaluate(commands, runs["evaluate"])
    _add_demo(commands, runs["demo"])
    return parser


def _add_command(commands, name: str, run, summary: str, details: str, seed_help: str):
    """A subcommand with ``--seed`` and, for those that train, ``--no-progress-bar``."""
    command = commands.add_parser(name, help=summary, description=f"{summary} {details}")
    command.set_defaults(run=run)
    command.add_argument("--seed", type=seed, default=0, help=f"{seed_help} (default: 0)")
    if name != "evaluate":
        hint = "do not show the training progress bar"
        command.add_argument("--no-progress-bar", action="store_true", help=hint)
    return command


def _add_train(commands, run: Callable) -> None:
    command = _add_command(
        commands,
        "train",
        run,
        "Train a VAE or GMVAE on the raw counts of an h5ad file.",
        "Writes OUTPUT: the input plus obsm['X_scvae'] and, for a GMVAE, obs['scvae_cluster'], "
        "obsm['scvae_cluster_probabilities'] and obs['scvae_cluster_confidence'], and prints a "
        "JSON summary of the fit. The input file is never modified; every output path is "
        "checked before the input is read.",
        "random seed",
    )
    command.add_argument("input", metavar="IN.h5ad", help="AnnData with raw counts")
    command.add_argument("-o", "--output", metavar="OUT.h5ad", required=True, help="output")
    command.add_argument(
        "--model", choices=("vae", "gmvae"), default="vae", help="model type (default: vae)"
    )
    command.add_argument(
        "--likelihood", choices=LIKELIHOOD_NAMES, default="nb", help="count model (default: nb)"
    )
    command.add_argument(
        "--n-clusters",
        type=cluster_count,
        metavar="K",
        help=f"GMVAE clusters, or 'auto' to let the model choose them (default: "
        f"{GMVAE_DEFAULT_CLUSTERS}; GMVAE only)",
    )
    command.add_argument(
        "--separability",
        type=float,
        metavar="T",
        help="GMVAE: components are merged into clusters until every pair of clusters is at "
        "least T separable, in (0, 1]; higher gives fewer, coarser clusters (default: 0.95 "
        "with --n-clusters auto; a fixed K is merged only when T is given; "
        "model.select_clusters in Python)",
    )
    command.add_argument(
        "--n-restarts",
        type=int,
        metavar="N",
        help="GMVAE fits from different random weights, of which the one whose clusters agree "
        "most with the others' is kept (default: 1; GMVAE only; N times the training time)",
    )
    command.add_argument(
        "--n-latent", type=int, default=10, metavar="N", help="latent dimension (default: 10)"
    )
    command.add_argument(
        "--batch-norm",
        choices=BATCH_NORM_PLACES,
        default="encoder",
        help="which networks batch-normalise their hidden layers (default: encoder; the "
        "decoder, the generative model, is left without batch statistics)",
    )
    command.add_argument("--layer", help="layer with the raw counts (default: X)")
    command.add_argument("--batch-key", metavar="KEY", help="obs column of the batches")
    command.add_argument(
        "--allow-non-integer",
        action="store_true",
        help="accept non-integer counts (e.g. ambient-corrected); not for piecewise likelihoods",
    )
    command.add_argument(
        "--max-epochs", type=int, metavar="N", help="training epochs (default: the model's)"
    )
    command.add_argument("--save-model", metavar="DIR", help="also save the trained model here")
    command.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUTPUT or model DIR"
    )


def _add_evaluate(commands, run: Callable) -> None:
    command = _add_command(
        commands,
        "evaluate",
        run,
        "Score a saved model on the cells of an h5ad file (held-out cells, typically).",
        "Prints a JSON object: model (VAE or GMVAE, read from the saved model), n_cells, elbo "
        "(mean ELBO per cell, nats), log_likelihood (importance-weighted estimate of log p(x) "
        "per cell, nats) and, for a GMVAE with --labels-key, ari and nmi of its clusters. "
        "The estimates are Monte Carlo ones, the same for the same --seed.",
        "random seed of the estimates",
    )
    command.add_argument("model_dir", metavar="MODEL_DIR", help="directory of a saved model")
    hint = "AnnData with the model's genes (others are left out)"
    command.add_argument("input", metavar="IN.h5ad", help=hint)
    hint = "obs column of known labels, one for every cell (NaN is refused)"
    command.add_argument("--labels-key", metavar="KEY", help=hint)
    hint = "importance samples per cell (default: 100)"
    command.add_argument("--n-mc-samples", type=int, default=100, metavar="N", help=hint)


def _add_demo(commands, run: Callable) -> None:
    command = _add_command(
        commands,
        "demo",
        run,
        "Cluster the bundled Paul et al. (2015) myeloid progenitors with a GMVAE.",
        "Keeps the most variable genes (the model itself sees raw counts) and drops the cells "
        "left without counts in them, trains a GMVAE with a negative binomial likelihood on "
        "90% of the 2730 cells and scores it on the other 10%; K is by default the 19 "
        "clusters published by Paul et al., so that the adjusted Rand index and normalised "
        "mutual information against them compare clusterings of the same resolution. Writes, "
        "into DIR (created once the options are checked): paul15_scvae.h5ad (the cells kept, "
        "annotated), umap.png, training_curves.png and metrics.json, and prints the metrics. "
        "Takes a few minutes on a laptop CPU.",
        "random seed",
    )
    command.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default="scvae_demo",
        help="output directory, files in it are replaced (default: scvae_demo)",
    )
    command.add_argument(
        "--max-epochs", type=int, metavar="N", help="training epochs (default: the GMVAE's)"
    )
    hint = "GMVAE components, or 'auto' to let the model choose (default: 19)"
    command.add_argument("--n-clusters", type=cluster_count, metavar="K", help=hint)
    command.add_argument(
        "--n-genes", type=gene_count, metavar="N", help="genes kept, 0 for all (default: 1000)"
    )
