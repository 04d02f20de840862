"""Reading saved models: checks before scvi-tools loads them, and migrations of old files."""

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

#: File name (after the prefix) of the AnnData scvi-tools saves beside a model.
SAVED_ADATA_NAME = "adata.h5ad"


def saved_adata_path(dir_path: str | Path, prefix: str | None) -> Path:
    """Where scvi-tools saves the AnnData of a model saved with ``save_anndata=True``."""
    return Path(dir_path) / f"{prefix or ''}{SAVED_ADATA_NAME}"


def remove_saved_adata(dir_path: str | Path, prefix: str | None) -> None:
    """Remove the AnnData an earlier save left in ``dir_path``, if any: a model saved over
    another without its AnnData must not be loaded with the other's cells."""
    saved_adata_path(dir_path, prefix).unlink(missing_ok=True)


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
    path = Path(dir_path) / f"{prefix or ''}model.pt"
    if not path.is_file():
        raise SavedModelError(f"No saved model at {path}: pass the directory given to save().")
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
        torch.save(saved, Path(copy) / f"{prefix or ''}model.pt")
        for other in Path(dir_path).iterdir():  # the saved AnnData, if any
            if other.name != f"{prefix or ''}model.pt" and other.is_file():
                try:
                    (Path(copy) / other.name).symlink_to(other.resolve())
                except OSError:  # no symbolic links on this file system
                    shutil.copy(other, copy)
        yield copy
