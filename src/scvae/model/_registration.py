"""Registering an AnnData's counts with one model class through scvi-tools' AnnDataManager."""

from typing import Any

from anndata import AnnData
from scvi.data import AnnDataManager

from scvae.data import count_fields, registering, without_scvi_setup_warnings


def register_counts(
    model_cls: type,
    adata: AnnData,
    layer: str | None = None,
    batch_key: str | None = None,
    labels_key: str | None = None,
    allow_non_integer: bool = False,
    **kwargs: Any,
) -> None:
    """Register ``adata``'s counts (and batch and label columns) for ``model_cls``, without
    validating them (:func:`scvae.data.check_setup` has); ``kwargs`` go to
    :meth:`scvi.data.AnnDataManager.register_fields`."""
    setup_method_args = model_cls._get_setup_method_args(
        cls=model_cls,
        adata=adata,
        layer=layer,
        batch_key=batch_key,
        labels_key=labels_key,
        allow_non_integer=allow_non_integer,
    )
    fields = count_fields(layer, batch_key, labels_key, allow_non_integer=allow_non_integer)
    adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
    with registering(adata), without_scvi_setup_warnings():  # scvae gives them itself
        adata_manager.register_fields(adata, **kwargs)
    model_cls.register_manager(adata_manager)
