"""Saved models: loading whichever class was saved, and the genes they read."""

from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from scvae.model import GMVAE, VAE, ScvaeModel, read_saved_model


def load_model(
    model_dir: str | Path, adata: AnnData | None = None, *, prefix: str | None = None
) -> ScvaeModel:
    """Load a saved :class:`~scvae.VAE` or :class:`~scvae.GMVAE`, whichever it is.

    The class is read from the registry that scvi-tools saves with the model.

    Parameters
    ----------
    model_dir
        Directory written by ``model.save``.
    adata
        AnnData with the model's genes, registered by transfer from the saved setup; by
        default the AnnData saved with the model (``model.save(..., save_anndata=True)``).
        A model saved without it, as ``scvae train --save-model`` saves, needs ``adata``.
    prefix
        File name prefix given to ``model.save(..., prefix=...)``.

    Returns
    -------
    The loaded model.

    Raises
    ------
    FileNotFoundError
        ``model_dir`` is not a directory.
    ValueError
        No readable model with this ``prefix`` in ``model_dir``, a model of another class, or
        no ``adata`` for a model saved without its AnnData.
    """
    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory")
    name = read_saved_model(model_dir, prefix)["attr_dict"]["registry_"]["model_name"]
    classes = {cls.__name__: cls for cls in (VAE, GMVAE)}
    if name not in classes:
        raise ValueError(f"{model_dir} holds a {name} model, not one of {sorted(classes)}")
    return classes[name].load(str(model_dir), adata=adata, prefix=prefix)


def saved_genes(model_dir: str | Path, *, prefix: str | None = None) -> pd.Index:
    """The genes of a saved model, in its order: select them from an AnnData with more genes,
    or another order, before loading the model onto it.

    Parameters
    ----------
    model_dir
        Directory written by ``model.save``.
    prefix
        File name prefix given to ``model.save(..., prefix=...)``.

    Returns
    -------
    The model's ``var_names``.

    Examples
    --------
    >>> query = query[:, scvae.tl.saved_genes("my_model")].copy()  # doctest: +SKIP
    >>> model = scvae.tl.load_model("my_model", query)  # doctest: +SKIP
    """
    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory")
    return pd.Index(np.asarray(read_saved_model(model_dir, prefix)["var_names"]))
