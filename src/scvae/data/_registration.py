"""scvi-tools' registration entries in an AnnData: removing them, and registering safely."""

import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from anndata import AnnData
from scvi.data import AnnDataManager

#: Prefix of the entries scvi-tools writes into ``obs`` and ``uns`` when registering AnnData.
SCVI_PRIVATE_PREFIX = "_scvi_"
#: ``uns`` key of the identity scvi-tools gives a registered AnnData (a copy keeps it).
SCVI_UUID_KEY = f"{SCVI_PRIVATE_PREFIX}uuid"

#: scvi-tools' warnings at registration that scvae gives in its own words (at setup).
SCVI_SETUP_WARNINGS = (
    r"Training will be faster when sparse matrix is formatted as CSR",
    r"Category .* in adata\.obs\['_scvi_(batch|labels)'\] has fewer than 3 cells",
)

#: The AnnData registered under each identity, while it exists.
_registered: "weakref.WeakValueDictionary[str, AnnData]" = weakref.WeakValueDictionary()


def strip_registration(adata: AnnData) -> AnnData:
    """Remove scvi-tools' private registration entries from ``adata``, in place.

    Registration writes ``uns["_scvi_uuid"]``, ``uns["_scvi_manager_uuid"]`` and ``obs``
    columns such as ``"_scvi_batch"``. They are internal, should not end up in files, and a
    copy that keeps the uuid would take over the original's registration when registered.

    Parameters
    ----------
    adata
        AnnData to clean.

    Returns
    -------
    The same ``adata``, for chaining.
    """
    for key in [k for k in adata.uns if k.startswith(SCVI_PRIVATE_PREFIX)]:
        del adata.uns[key]
    private = [c for c in adata.obs.columns if str(c).startswith(SCVI_PRIVATE_PREFIX)]
    adata.obs = adata.obs.drop(columns=private)
    return adata


@contextmanager
def without_scvi_setup_warnings() -> Iterator[None]:
    """Drop :data:`SCVI_SETUP_WARNINGS` in a block: scvi-tools gives them at every
    registration and transfer of a setup, naming its own ``obs`` columns;
    :func:`scvae.setup_anndata` warns once, in the user's terms."""
    with warnings.catch_warnings():
        for message in SCVI_SETUP_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


@contextmanager
def registering(adata: AnnData) -> Iterator[None]:
    """Register ``adata`` in the block without taking another AnnData's registration, and
    with its own registration entries restored if the block fails.

    A copy of a registered AnnData (``adata[:100].copy()``, or one read back from a file
    written after setup) keeps the original's identity; registered under it, it would take
    the original's place, and models could no longer be built on the original. Such a copy
    loses its registration entries first, so that it gets an identity of its own. A view
    (whose entries cannot be removed) is refused. If the block fails, ``adata``'s
    registration entries (``uns`` and ``obs``) are put back as they were, so that models
    already trained on it read the batch codes they were trained with.

    Raises
    ------
    ValueError
        ``adata`` is a view.
    """
    if adata.is_view:  # its uns cannot be changed: it would keep the original's identity
        raise ValueError(
            "The AnnData is a view (e.g. adata[mask]), which cannot be registered without "
            "changing the AnnData it views: register a copy, adata = adata[mask].copy()."
        )
    if _copy_of_registered(adata):
        strip_registration(adata)
    uns = {key: adata.uns[key] for key in adata.uns if key.startswith(SCVI_PRIVATE_PREFIX)}
    obs = adata.obs[[c for c in adata.obs.columns if str(c).startswith(SCVI_PRIVATE_PREFIX)]]
    obs = obs.copy()
    try:
        yield
    except BaseException:
        strip_registration(adata)
        adata.uns.update(uns)
        for column in obs.columns:
            adata.obs[column] = obs[column]
        raise
    _registered[adata.uns[SCVI_UUID_KEY]] = adata


def check_own_registration(adata: AnnData, model_cls: type) -> None:
    """Raise a :class:`ValueError` unless ``adata`` is set up for ``model_cls``, saying how:
    not set up at all, or a copy of an AnnData registered by :func:`scvae.setup_anndata`
    (it kept the original's identity) and not registered itself."""
    if _copy_of_registered(adata):
        if adata.is_view:  # a view cannot be set up: a copy of it can
            raise ValueError(
                "This AnnData is a view of one set up for scvae (adata[cells]): make it a "
                "copy, subset = adata[cells].copy(), run scvae.setup_anndata(subset) (with "
                "the same arguments) and build the model on the copy."
            )
        raise ValueError(
            "This AnnData is a copy of one set up for scvae (it kept that one's registration) "
            "and has not been set up itself: run scvae.setup_anndata on it (with the same "
            "arguments) before building a model on it."
        )
    if registration_of(model_cls, adata) is None:
        raise ValueError(
            "This AnnData has not been set up for scvae: register its raw counts first, "
            "scvae.setup_anndata(adata), or scvae.setup_anndata(adata, layer='counts') when "
            "they are in a layer."
        )


def _copy_of_registered(adata: AnnData) -> bool:
    """Whether ``adata`` holds the identity of another AnnData registered by scvae (a copy
    keeps it)."""
    identity = adata.uns.get(SCVI_UUID_KEY)
    owner = _registered.get(identity) if isinstance(identity, str) else None
    return owner is not None and owner is not adata


def registration_of(model_cls: type, adata: AnnData | None) -> AnnDataManager | None:
    """The setup (:class:`~scvi.data.AnnDataManager`) ``model_cls`` holds for ``adata``, or
    ``None``: no ``adata``, not registered for the class, or a copy of a registered one."""
    if adata is None:
        return None
    try:
        return model_cls._get_most_recent_anndata_manager(adata)
    except ValueError:  # a copy of a registered AnnData, which has the original's uuid
        return None
