"""Command line interface: ``scvae train``, ``scvae evaluate`` and ``scvae demo``.

The command only parses and checks its arguments and hands over to library functions
(:func:`scvae.tl.fit_model`, :func:`scvae.tl.evaluate_model`, :func:`scvae.tl.run_demo`);
torch and scvi-tools are imported after parsing, so ``--help`` is instant. Results are JSON
on stdout; logs, warnings and progress bars go to stderr, so that ``scvae evaluate ... >
metrics.json`` writes valid JSON. Run ``scvae --help`` or ``scvae COMMAND --help``.
"""

import argparse
import contextlib
import functools
import json
import os
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from scvae._cli_options import GMVAE_DEFAULT_CLUSTERS, build_parser
from scvae._files import write_whole

#: Exceptions reported as one line on stderr with exit status 2 (anything else is a bug).
USER_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, KeyError)
#: The library arguments that ``scvae train``'s error messages name, as its options (the
#: other commands take no such options: a saved model knows its layer).
CLI_HINTS = {
    "allow_non_integer=True": "--allow-non-integer",
    "layer=None": "no --layer",
    "key_added='scvae' would write": "scvae train would write",
    "choose another key_added": "rename that column first",
    "n_clusters='auto'": "--n-clusters auto",
    "model.select_clusters": "--separability",
    "in pl.training_curves(model)": "with --save-model and scvae.pl.training_curves in Python",
    "in model.cluster_sizes_": "in the summary's cluster_sizes",
}
#: Further arguments of the library that ``scvae train`` takes as options of the same name.
CLI_OPTIONS = ("batch_key", "n_clusters", "max_epochs", "n_restarts")
#: Exit status of a command stopped by SIGTERM (128 + 15, as a shell reports it).
SIGTERM_STATUS = 143
#: Exit status of a command stopped by SIGINT, Ctrl-C (128 + 2, as a shell reports it).
SIGINT_STATUS = 130


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
    parser = build_parser({"train": _train, "evaluate": _evaluate, "demo": _demo})
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error printed by argparse
        return exit_.code if isinstance(exit_.code, int) else 2
    stdout = sys.stdout
    # SIGTERM (a scheduler's time limit, kill) raises, so that no output is left half written.
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            # A warning's source line would be scvae's or the launcher's: the message alone.
            warnings.showwarning = functools.partial(_show_warning, args.command)
            result = args.run(args)
    except USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        message = _as_options(message, args.command, _user_paths(args))
        print(f"scvae {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit) as stop:
        # Lightning stops training on SIGTERM with a bare SystemExit, and on Ctrl-C (SIGINT)
        # with SystemExit(1) raised while it handles the KeyboardInterrupt.
        print(f"scvae {args.command}: stopped before finishing", file=sys.stderr)
        if KeyboardInterrupt in (type(stop), type(stop.__context__)):
            return SIGINT_STATUS
        return stop.code if isinstance(stop.code, int) and stop.code else SIGTERM_STATUS
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result is not None:
        try:
            print(json.dumps(result, indent=2), file=stdout, flush=True)
        except OSError as error:  # a closed pipe, a full disk
            print(
                f"scvae {args.command}: error: cannot write the result ({error})", file=sys.stderr
            )
            return 2
    return 0


def _stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(SIGTERM_STATUS)


def _show_warning(command: str, message, category, filename, lineno, file=None, line=None):
    """Print a warning during a command as ``scvae COMMAND: UserWarning: message``, the
    arguments it names as the command's options."""
    message = _as_options(str(message), command)
    print(f"scvae {command}: {category.__name__}: {message}", file=file or sys.stderr)


def _user_paths(args: argparse.Namespace) -> list[str]:
    """The paths given on the command line, and the absolute forms the messages name."""
    paths = []
    for name in ("input", "output", "save_model", "model_dir"):
        given = getattr(args, name, None)
        if given not in (None, "", ".", ".."):
            resolved = Path(given).resolve()
            paths += [str(given), str(resolved), str(resolved.parent)]
    return paths


def _as_options(message: str, command: str, paths: Sequence[str] = ()) -> str:
    """``message`` with the library arguments it names as ``scvae train``'s (and ``scvae
    demo``'s) options; ``paths`` in it are left as they are (a folder may be named
    n_clusters=10)."""
    if command == "evaluate":
        return message
    kept = sorted(set(paths), key=len, reverse=True)
    protected = re.compile("|".join(map(re.escape, kept))) if kept else None
    found = iter(protected.findall(message) if protected else ())
    if protected:
        message = protected.sub("\0", message)
    if command == "train":
        for library, command_line in CLI_HINTS.items():
            message = message.replace(library, command_line)
        message = re.sub(r"(?<![.\w])layer='([^']*)'", r"--layer \1", message)
    for name in CLI_OPTIONS:  # n_clusters=5 as --n-clusters 5, not model.n_clusters_used_
        option = f"--{name.replace('_', '-')}"
        message = re.sub(rf"(?<![.\w-]){name}=", f"{option} ", message)
        message = re.sub(rf"(?<![.\w-]){name}(?!\w|\.\w)", option, message)
    return re.sub("\0", lambda _: next(found), message)


def _existing_file(path: str) -> Path:
    if Path(path).is_dir():
        raise IsADirectoryError(f"{path} is a directory; give the path of an .h5ad file")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return Path(path)


def _read_h5ad(path: Path):
    """The AnnData in ``path``, or an error naming the file that is not a readable h5ad."""
    import anndata as ad

    try:
        return ad.read_h5ad(path)
    except Exception as error:  # h5py and anndata raise many types for other HDF5 files
        raise ValueError(
            f"{path} is not a readable .h5ad file ({type(error).__name__}: {error}); a 10x "
            "Genomics .h5 converts with scanpy.read_10x_h5(path).write_h5ad('counts.h5ad')"
        ) from error


def _check_writable(path: Path, overwrite: bool, what: str, is_directory: bool) -> None:
    """Refuse, before any work, an output that exists (without ``--overwrite``), a file where
    a directory is written or the reverse (``is_directory``), or one that cannot be created:
    missing folders above it are created when it is written (as ``model.save`` does), so the
    nearest folder that exists must be writable, and a file must not stand in their place."""
    if path.is_dir() and not is_directory:
        raise IsADirectoryError(f"{what} {path} is a directory; give the path of an .h5ad file")
    if path.exists() and not path.is_dir() and is_directory:
        raise FileExistsError(f"{what} {path} is a file; give a directory path")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    # A model directory that exists is written into; anything else is created below the
    # nearest folder above it that exists.
    if path.is_dir() and is_directory:
        directory = path
    else:
        directory = next(folder for folder in path.resolve().parents if folder.exists())
    if not directory.is_dir():
        raise NotADirectoryError(f"{what} {path}: {directory} is a file, not a directory")
    if not os.access(directory, os.W_OK):
        raise PermissionError(f"{what} {path}: directory {directory} is not writable")


def _train(args: argparse.Namespace) -> dict:
    source, output = _existing_file(args.input), Path(args.output)
    if output.resolve() == source.resolve():
        raise ValueError("the output would overwrite the input; choose another -o")
    if output.suffix != ".h5ad" and not output.is_dir():
        raise ValueError(f"-o {output} is written as an AnnData: give it the suffix .h5ad")
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
    from scvae.tl import fit_model

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
    if args.save_model is not None:  # first: an output file means that everything is written
        model.save(args.save_model, overwrite=args.overwrite, save_anndata=False)
        summary["model_dir"] = args.save_model
    adata = strip_registration(adata)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_whole(output, lambda path: adata.write_h5ad(path, compression="gzip"))
    print(f"wrote {output}", file=sys.stderr)
    return {"output": str(output), **summary}


def _evaluate(args: argparse.Namespace) -> dict:
    source = _existing_file(args.input)
    if not Path(args.model_dir).is_dir():
        raise FileNotFoundError(f"{args.model_dir}: no such model directory")

    from scvae.model import GeneMismatchError
    from scvae.tl import check_labels, evaluate_model, load_model, saved_genes

    if args.n_mc_samples < 1:
        raise ValueError(f"--n-mc-samples must be at least 1, got {args.n_mc_samples}")
    adata = _read_h5ad(source)
    if adata.n_obs == 0:
        raise ValueError(f"{source} has no cells to evaluate")
    check_labels(adata, args.labels_key, "--labels-key")
    try:
        model = load_model(args.model_dir, adata)
    except GeneMismatchError:  # extra genes, or another order: the model's genes, if all there
        genes = saved_genes(args.model_dir)
        if not set(genes) <= set(adata.var_names):
            raise
        print(f"evaluating the model's {len(genes)} genes of the {adata.n_vars}", file=sys.stderr)
        model = load_model(args.model_dir, adata[:, list(genes)].copy())
        adata = model.adata
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
