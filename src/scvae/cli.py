"""Command line interface: ``scvae train``, ``scvae evaluate`` and ``scvae demo``.

The command only parses and checks its arguments and hands over to library functions
(:func:`scvae.tl.fit_model`, :func:`scvae.tl.evaluate_model`, :func:`scvae.tl.run_demo`);
torch and scvi-tools are imported after parsing, so ``--help`` is instant. Results are JSON
on stdout; logs, warnings and progress bars go to stderr, so that ``scvae evaluate ... >
metrics.json`` writes valid JSON. Run ``scvae --help`` or ``scvae COMMAND --help``.
"""

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: Exceptions reported as one line on stderr with exit status 2 (anything else is a bug).
USER_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, KeyError)
#: Names of ``--likelihood`` (those of :data:`scvae.distributions.LIKELIHOODS`, listed here so
#: that ``--help`` needs no torch; a test keeps the two equal).
LIKELIHOOD_NAMES = ("poisson", "nb", "zip", "zinb", "constrained_poisson")
#: Values of ``--batch-norm``: the placements ``use_batch_norm`` names (kept equal by a test).
BATCH_NORM_PLACES = ("none", "encoder", "decoder", "both")
#: ``scvae.GMVAE``'s default number of components, for ``--help`` (kept equal by a test).
GMVAE_DEFAULT_CLUSTERS = 10
#: The library arguments that ``scvae train``'s error messages name, as its options (the
#: other commands take no such options: a saved model knows its layer).
CLI_HINTS = {
    "allow_non_integer=True": "--allow-non-integer",
    "layer='counts'": "--layer counts",
    "layer=None": "no --layer",
}
#: Exit status of a command stopped by SIGTERM (128 + 15, as a shell reports it).
SIGTERM_STATUS = 143
#: Exit status of a command stopped by SIGINT, Ctrl-C (128 + 2, as a shell reports it).
SIGINT_STATUS = 130


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scvae`` command line.

    Parameters
    ----------
    argv
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    Exit status: 0 on success (and for ``--help`` and ``--version``), 2 on a usage or input
    error (a bad input is one line on stderr rather than a traceback; a malformed command
    line gets argparse's usage first), 130 when stopped by SIGINT (Ctrl-C) and 143 when
    stopped by SIGTERM.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error printed by argparse
        return exit_.code if isinstance(exit_.code, int) else 2
    stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # whatever the libraries print
            result = args.run(args)
    except USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        for library, command_line in CLI_HINTS.items() if args.command == "train" else ():
            message = message.replace(library, command_line)
        print(f"scvae {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit) as stop:
        # Lightning stops training on SIGTERM with a bare SystemExit, and on Ctrl-C (SIGINT)
        # with SystemExit(1) raised while it handles the KeyboardInterrupt.
        print(f"scvae {args.command}: stopped before finishing", file=sys.stderr)
        if KeyboardInterrupt in (type(stop), type(stop.__context__)):
            return SIGINT_STATUS
        return stop.code if isinstance(stop.code, int) and stop.code else SIGTERM_STATUS
    if result is not None:
        print(json.dumps(result, indent=2), file=stdout)
    return 0


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scvae",
        description="Deep generative models (VAE, Gaussian-mixture VAE) of raw single-cell counts.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="versions, and whether a GPU is found"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_demo(commands)
    return parser


def _add_command(commands, name: str, run, summary: str, details: str, seed_help: str):
    """A subcommand with ``--seed`` and, for those that train, ``--no-progress-bar``."""
    command = commands.add_parser(name, help=summary, description=f"{summary} {details}")
    command.set_defaults(run=run)
    command.add_argument("--seed", type=int, default=0, help=f"{seed_help} (default: 0)")
    if name != "evaluate":
        hint = "do not show the training progress bar"
        command.add_argument("--no-progress-bar", action="store_true", help=hint)
    return command


def _add_train(commands) -> None:
    command = _add_command(
        commands,
        "train",
        _train,
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
        "least T separable, in (0, 1]; higher gives fewer, coarser clusters (default: 0.95; "
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


def _add_evaluate(commands) -> None:
    command = _add_command(
        commands,
        "evaluate",
        _evaluate,
        "Score a saved model on the cells of an h5ad file (held-out cells, typically).",
        "Prints a JSON object: model (VAE or GMVAE, read from the saved model), n_cells, elbo "
        "(mean ELBO per cell, nats), log_likelihood (importance-weighted estimate of log p(x) "
        "per cell, nats) and, for a GMVAE with --labels-key, ari and nmi of its clusters. "
        "The estimates are Monte Carlo ones, the same for the same --seed.",
        "random seed of the estimates",
    )
    command.add_argument("model_dir", metavar="MODEL_DIR", help="directory of a saved model")
    command.add_argument("input", metavar="IN.h5ad", help="AnnData with the model's genes")
    hint = "obs column of known labels, one for every cell (NaN is refused)"
    command.add_argument("--labels-key", metavar="KEY", help=hint)
    hint = "importance samples per cell (default: 100)"
    command.add_argument("--n-mc-samples", type=int, default=100, metavar="N", help=hint)


def _add_demo(commands) -> None:
    command = _add_command(
        commands,
        "demo",
        _demo,
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


def _existing_file(path: str) -> Path:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return Path(path)


def _read_h5ad(path: Path):
    """The AnnData in ``path``, or an error naming the file that is not a readable h5ad."""
    import anndata as ad

    try:
        return ad.read_h5ad(path)
    except OSError as error:
        raise OSError(f"{path} is not a readable .h5ad file ({error})") from error


def _check_writable(path: Path, overwrite: bool, what: str, is_directory: bool) -> None:
    """Refuse, before any work, an output that exists (without ``--overwrite``), a file where
    a directory is written or the reverse (``is_directory``), or one whose parent directory
    does not exist or is not writable."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    if path.is_dir() and not is_directory:
        raise IsADirectoryError(f"{what} {path} is a directory; give the path of an .h5ad file")
    if path.exists() and not path.is_dir() and is_directory:
        raise FileExistsError(f"{what} {path} is a file; give a directory path")
    directory = path.resolve().parent
    if not directory.is_dir():
        raise FileNotFoundError(f"{what} {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise PermissionError(f"{what} {path}: directory {directory} is not writable")


def _train(args: argparse.Namespace) -> dict:
    source, output = _existing_file(args.input), Path(args.output)
    if output.resolve() == source.resolve():
        raise ValueError("the output would overwrite the input; choose another -o")
    _check_writable(output, args.overwrite, "output", is_directory=False)
    if args.save_model is not None:
        if Path(args.save_model).resolve() == output.resolve():
            raise ValueError("--save-model and -o name the same path; give two")
        _check_writable(Path(args.save_model), args.overwrite, "model directory", is_directory=True)
    train_kwargs = {"max_epochs": args.max_epochs, "enable_progress_bar": not args.no_progress_bar}
    model_kwargs = {
        "likelihood": args.likelihood,
        "n_latent": args.n_latent,
        "use_batch_norm": args.batch_norm,
    }
    if args.model == "vae":
        for option in ("n_clusters", "n_restarts", "separability"):
            if getattr(args, option) is not None:
                raise ValueError(f"--{option.replace('_', '-')} is an option of --model gmvae")
    else:
        if args.n_restarts is not None:
            if args.n_restarts < 1:
                raise ValueError(f"--n-restarts must be at least 1, got {args.n_restarts}")
            train_kwargs["n_restarts"] = args.n_restarts
        model_kwargs["n_clusters"] = args.n_clusters or GMVAE_DEFAULT_CLUSTERS
        if args.separability is not None and not 0 < args.separability <= 1:
            raise ValueError(f"--separability must be in (0, 1], got {args.separability}")

    from scvae.data import strip_registration
    from scvae.tl._workflow import fit_model

    adata = _read_h5ad(source)
    model = fit_model(
        adata,
        layer=args.layer,
        batch_key=args.batch_key,
        allow_non_integer=args.allow_non_integer,
        seed=args.seed,
        train_kwargs=train_kwargs,
        **model_kwargs,
    )
    if args.separability is not None:
        model.select_clusters(separability=args.separability)
    summary = model.summary()
    strip_registration(adata).write_h5ad(output, compression="gzip")
    print(f"wrote {output}", file=sys.stderr)
    if args.save_model is not None:
        model.save(args.save_model, overwrite=args.overwrite, save_anndata=False)
        summary["model_dir"] = args.save_model
    return {"output": str(output), **summary}


def _evaluate(args: argparse.Namespace) -> dict:
    source = _existing_file(args.input)
    if not Path(args.model_dir).is_dir():
        raise FileNotFoundError(f"{args.model_dir}: no such model directory")

    from scvae.tl import evaluate_model, load_model
    from scvae.tl._workflow import check_labels

    if args.n_mc_samples < 1:
        raise ValueError(f"--n-mc-samples must be at least 1, got {args.n_mc_samples}")
    adata = _read_h5ad(source)
    check_labels(adata, args.labels_key, "--labels-key")
    model = load_model(args.model_dir, adata)
    return evaluate_model(
        model, adata, labels_key=args.labels_key, n_mc_samples=args.n_mc_samples, seed=args.seed
    )


def _demo(args: argparse.Namespace) -> dict:
    _check_writable(Path(args.output), overwrite=True, what="output", is_directory=True)
    from scvae.tl import run_demo

    options = {key: getattr(args, key) for key in ("max_epochs", "n_clusters", "n_genes")}
    options = {key: value for key, value in options.items() if value is not None}
    metrics = run_demo(
        args.output, seed=args.seed, enable_progress_bar=not args.no_progress_bar, **options
    )
    if dropped := metrics["n_cells_dropped"]:
        print(f"dropped {dropped} cells without counts in the genes kept", file=sys.stderr)
    files = "paul15_scvae.h5ad, umap.png, training_curves.png, metrics.json"
    print(f"wrote {args.output}/: {files}", file=sys.stderr)
    return metrics


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
