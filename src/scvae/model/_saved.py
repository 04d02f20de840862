"""Saving and reading saved models: whole saves, checks before scvi-tools loads them, and
migrations of old files."""

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS

from ._query_checks import check_known_batches, check_same_genes

#: File name (after the prefix) of the model scvi-tools saves.
MODEL_FILE = "model.pt"
#: File name (after the prefix) of the AnnData scvi-tools saves beside a model.
SAVED_ADATA_NAME = "adata.h5ad"
#: Entry of a saved ``model.pt`` that records whether the model's AnnData was saved with it.
SAVED_ADATA_KEY = "scvae_saved_anndata"


def saved_model_file(dir_path: str | Path, prefix: str | None) -> Path:
    """The ``model.pt`` that ``model.save(dir_path, prefix=prefix)`` writes."""
    return Path(dir_path) / f"{prefix or ''}{MODEL_FILE}"


def saved_adata_path(dir_path: str | Path, prefix: str | None) -> Path:
    """Where scvi-tools saves the AnnData of a model saved with ``save_anndata=True``."""
    return Path(dir_path) / f"{prefix or ''}{SAVED_ADATA_NAME}"


def has_saved_adata(dir_path: str | Path, prefix: str | None, saved: dict) -> bool:
    """Whether the model ``saved`` (its ``model.pt``) has its own AnnData in ``dir_path``: one
    that :func:`save_whole` recorded, not one an earlier save or the user left there."""
    exists = saved_adata_path(dir_path, prefix).is_file()
    return exists and saved.get(SAVED_ADATA_KEY, True)  # unrecorded in older saves


def check_attachable(
    adata: AnnData | None, dir_path: str | Path, prefix: str | None, saved: dict
) -> None:
    """Refuse to load the model ``saved`` (its ``model.pt``) onto ``adata`` without the
    model's genes in order or with batches it was not trained on, or without ``adata`` when
    no AnnData was saved with it."""
    if adata is not None and not isinstance(adata, AnnData):
        raise TypeError(
            f"adata must be an AnnData to attach, or None for the one saved with the model; "
            f"got {type(adata).__name__} (a model without cells is not supported)."
        )
    if adata is None:
        if not has_saved_adata(dir_path, prefix, saved):
            raise ValueError(
                f"The model in {dir_path} was saved without its AnnData (save_anndata=False, "
                "as scvae train --save-model saves): pass the cells to attach, with the "
                "model's genes, as adata=..."
            )
        return
    check_same_genes(adata.var_names, saved["var_names"])
    registry = saved["attr_dict"]["registry_"]
    batches = registry["field_registries"][REGISTRY_KEYS.BATCH_KEY]["state_registry"]
    check_known_batches(
        adata, registry["setup_args"].get("batch_key"), batches["categorical_mapping"]
    )


@contextmanager
def backed_file_kept(adata: AnnData | None):
    """A block that writes ``adata`` elsewhere, after which a backed ``adata`` reads its own
    file again, in its mode (anndata's write points a backed AnnData at the written copy,
    which :func:`save_whole` moves away)."""
    if adata is None or not adata.isbacked:
        yield
        return
    filename, mode = adata.filename, adata.file["/"].file.mode
    try:
        yield
    finally:
        adata.file.close()
        adata.file.open(filename, mode)


def save_whole(
    save: Callable[[str], None],
    dir_path: str | Path,
    prefix: str | None,
    overwrite: bool,
    save_anndata: bool,
) -> None:
    """Save a model into ``dir_path`` whole or not at all.

    ``save(path)`` (scvi-tools' save) writes the files into a hidden directory inside
    ``dir_path``; ``model.pt`` then records ``save_anndata`` (:data:`SAVED_ADATA_KEY`), and
    the files are moved into ``dir_path`` only once all are written, one by one (a process
    killed between two moves, a matter of microseconds, can leave both saves' files). A
    failure leaves ``dir_path`` as it was (the directories it created are removed); no other
    file in it is removed.
    """
    target = Path(dir_path)
    if target.exists() and not overwrite:
        raise ValueError(
            f"{target} already exists: save to another directory, or pass overwrite=True to "
            "replace the model saved there."
        )
    created = next((d for d in (target, *target.parents) if d.parent.exists()), None)
    created = None if target.exists() else created  # the outermost directory made here
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=target, prefix=".saving-") as staging:
            save(staging)
            model_file = saved_model_file(staging, prefix)
            saved = torch.load(model_file, map_location="cpu", weights_only=False)
            saved[SAVED_ADATA_KEY] = bool(save_anndata)
            torch.save(saved, model_file)
            for file in Path(staging).iterdir():
                os.replace(file, target / file.name)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


class SavedModelError(ValueError):
    """A directory does not hold a readable saved scvae model."""


def read_saved_model(
    dir_path: str | Path, prefix: str | None, model_cls: type | None = None
) -> dict:
    """The contents of a saved model's ``model.pt`` (``var_names``, ``attr_dict``, ...),
    checked to be a ``model_cls`` when one is given.

    Raises
    ------
    SavedModelError
        No such file, one torch cannot read as a saved model, or a model of another class
        than ``model_cls`` (the message names it).
    """
    path = saved_model_file(dir_path, prefix)
    if not path.is_file():
        prefixes = sorted(
            other.name[: -len(MODEL_FILE)] for other in path.parent.glob(f"*{MODEL_FILE}")
        )
        hint = f" It holds models saved with prefix={prefixes}." if prefixes else ""
        raise SavedModelError(
            f"No saved model at {path}: pass the directory and prefix given to save().{hint}"
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        np.asarray(saved["var_names"])
        saved["attr_dict"]["init_params_"]
        name = saved["attr_dict"]["registry_"]["model_name"]
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise SavedModelError(
            f"{path} is not a readable scvae model ({type(error).__name__}: {error}); the file "
            "may be truncated or written by another tool. Save the model again."
        ) from error
    if model_cls is not None and name != model_cls.__name__:
        raise SavedModelError(
            f"{dir_path} holds a {name} model, not a {model_cls.__name__}: load it with its "
            "own class, or with scvae.tl.load_model, which reads the class."
        )
    return saved


def saved_init_params(saved: dict) -> dict:
    """The constructor arguments a saved model was built with (``non_kwargs``)."""
    return saved["attr_dict"]["init_params_"]["non_kwargs"]


@contextmanager
def migrated(dir_path: str | Path, prefix: str | None, saved: dict, defaults: dict):
    """A directory to load from in which the saved constructor arguments lack none of
    ``defaults``.

    A model saved before an argument existed was built with that argument's old behaviour,
    given here; the new default would build a different model. When nothing is missing, this
    is ``dir_path`` itself; otherwise a temporary copy of ``model.pt`` with the arguments
    added (the saved files are never modified), removed on exit.
    """
    missing = {key: value for key, value in defaults.items() if key not in saved_init_params(saved)}
    if not missing:
        yield dir_path
        return
    saved_init_params(saved).update(missing)
    with tempfile.TemporaryDirectory(prefix="scvae-migrated-") as copy:
        migrated = saved_model_file(copy, prefix)
        torch.save(saved, migrated)
        for other in Path(dir_path).iterdir():  # the saved AnnData, if any
            if other.name != migrated.name and other.is_file():
                try:
                    (Path(copy) / other.name).symlink_to(other.resolve())
                except OSError:  # no symbolic links on this file system
                    shutil.copy(other, copy)
        yield copy
