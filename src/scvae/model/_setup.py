"""Register an AnnData once for every scvae model."""

from anndata import AnnData

from scvae.data import check_setup, registering

from ._base import ScvaeModel
from ._registration import register_counts


def setup_anndata(
    adata: AnnData,
    layer: str | None = None,
    batch_key: str | None = None,
    labels_key: str | None = None,
    *,
    allow_non_integer: bool = False,
) -> None:
    """Validate the raw counts of ``adata`` and register them for every scvae model.

    Registration is done the scvi-tools way (an :class:`~scvi.data.AnnDataManager` with a
    count layer and categorical batch/label fields) for each model class, so that
    ``scvae.VAE(adata)`` and ``scvae.GMVAE(adata)`` both work afterwards. The data are checked
    first: on bad input nothing is written into ``adata``, and if registering fails, the
    registration entries of ``adata`` are restored, so models already trained on it read
    what they were trained on. A view is refused (register a copy). A copy of a registered
    AnnData (e.g. ``adata[:100].copy()``) is registered on its own, leaving the original's
    registration in place. Changing the registered counts in place afterwards (normalising
    them, removing genes or cells), or renaming the batches of the ``batch_key`` column, is
    refused when a model next reads them; register again after such a change. Reordering
    the column's categories is harmless: the models read each cell's batch by name.

    Parameters
    ----------
    adata
        AnnData with raw UMI counts, cells x genes (dense, CSR, CSC or backed).
    layer
        Layer holding the raw counts; ``None`` uses ``adata.X``.
    batch_key
        ``adata.obs`` column with each cell's batch. The decoder is conditioned on it.
    labels_key
        ``adata.obs`` column with known cell labels, kept for evaluation; never used to train.
        Cells without a label (NaN) are registered as ``"unlabelled"``.
    allow_non_integer
        Accept non-integer, non-negative values (e.g. ambient-corrected counts). The Poisson,
        NB and zero-inflated likelihoods extend to them through the gamma function; the
        piecewise-categorical variants need integers and refuse such data.

    Raises
    ------
    KeyError
        The layer or an ``obs`` column does not exist.
    ValueError
        ``adata`` is a view, a ``batch_key`` column has missing values, or an ``obs`` column
        mixes types (e.g. numbers and strings).
    scvae.data.InvalidCountsError
        The matrix is not raw counts (see :func:`scvae.data.validate_counts`).

    Warns
    -----
    UserWarning
        A sparse matrix that is not CSR (slower minibatches; the conversion is given), names
        that suggest a genes x cells matrix (cells named like Ensembl gene IDs, or genes like
        cell barcodes), or batches of fewer than 3 cells (a column that is not a batch?).
    """
    check_setup(adata, layer, batch_key, labels_key, allow_non_integer)
    with registering(adata):  # all classes or, if one fails, the registration as it was
        for model_cls in _model_classes(ScvaeModel):
            register_counts(
                model_cls,
                adata,
                layer=layer,
                batch_key=batch_key,
                labels_key=labels_key,
                allow_non_integer=allow_non_integer,
            )


def _model_classes(base: type) -> list[type]:
    """All concrete subclasses of ``base``, recursively."""
    classes = []
    for sub in base.__subclasses__():
        classes += [sub, *_model_classes(sub)]
    return classes
