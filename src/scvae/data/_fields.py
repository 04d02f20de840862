"""The registered count matrix, with a fingerprint that tells when it changed in place."""

import hashlib
from typing import Any

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import LayerField

from ._validation import validate_counts

#: Cells whose counts the fingerprint summarises, spread evenly over the matrix.
N_FINGERPRINT_CELLS = 32


class CountLayerField(LayerField):
    """scvi-tools' :class:`~scvi.data.fields.LayerField` for raw counts, with a fingerprint.

    Registration records, beside scvi-tools' state, the matrix's shape, a hash of its gene
    names, and the total and sum of squares of :data:`N_FINGERPRINT_CELLS` evenly spaced
    cells (not their names: renaming cells, as ``adata.obs_names_make_unique()`` does, changes
    nothing a model computes). :meth:`check_unchanged` compares them with the AnnData as it
    is now, which catches the in-place changes of a scanpy session
    (``sc.pp.normalize_total``, ``sc.pp.log1p``, ``sc.pp.filter_genes``,
    ``sc.pp.filter_cells``) at the cost of reading those few cells. The counts of the AnnData
    registered first are checked by :func:`scvae.setup_anndata`; those of every AnnData the
    registration is transferred to (a query, or a copy of the registered AnnData) by
    :func:`scvae.data.validate_counts` here.

    Parameters
    ----------
    registry_key
        Key of the field in the data registry.
    layer
        Layer holding the counts, ``None`` for ``adata.X``.
    allow_non_integer
        Accept non-negative non-integer counts in the AnnData transferred to.
    """

    FINGERPRINT_KEY = "fingerprint"

    def __init__(self, registry_key: str, layer: str | None, *, allow_non_integer: bool = False):
        super().__init__(registry_key, layer, is_count_data=False)
        self.allow_non_integer = allow_non_integer

    def transfer_field(self, state_registry: dict, adata_target: AnnData, **kwargs: Any) -> dict:
        """Check the target's counts, then register them as scvi-tools does.

        Parameters
        ----------
        state_registry
            The field's state recorded at registration.
        adata_target
            AnnData the setup is transferred to.
        **kwargs
            Passed to scvi-tools' :meth:`~scvi.data.fields.LayerField.transfer_field`.
        """
        validate_counts(
            adata_target, layer=self.attr_key, allow_non_integer=self.allow_non_integer, query=True
        )
        return super().transfer_field(state_registry, adata_target, **kwargs)

    def register_field(self, adata: AnnData) -> dict:
        """Register the counts and record their fingerprint.

        Parameters
        ----------
        adata
            AnnData to register.
        """
        state = super().register_field(adata)
        state[self.FINGERPRINT_KEY] = fingerprint(self.get_field_data(adata), adata)
        return state

    @classmethod
    def check_unchanged(cls, adata_manager: AnnDataManager, *, counts: bool = True) -> None:
        """Raise a :class:`ValueError` naming what changed if the registered counts are no
        longer those that were registered (nothing to check for a model saved without a
        fingerprint).

        Parameters
        ----------
        adata_manager
            Manager of the registered AnnData.
        counts
            Check the counts themselves too; ``False``: only the cells and genes (for what
            reads the genes but not the counts, such as saving a model without its data).
        """
        state = adata_manager.get_state_registry(REGISTRY_KEYS.X_KEY)
        recorded = state.get(cls.FINGERPRINT_KEY)
        if recorded is None:
            return
        adata, layer = adata_manager.adata, registered_layer(adata_manager)
        setup = "scvae.setup_anndata(adata" + ("" if layer is None else f", layer={layer!r}") + ")"
        again = (
            f"Run {setup} again on the data as they are now and build the model anew, or undo "
            "the change."
        )
        _check_same_cells_and_genes(adata, recorded, again)
        if not counts:
            return
        now = fingerprint(adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY), adata)
        _check_same_counts(adata, recorded, now, layer, setup)


def _check_same_cells_and_genes(adata: AnnData, recorded: dict, again: str) -> None:
    """Raise a :class:`ValueError` if cells or genes were added, removed or renamed since
    setup (``recorded``: the fingerprint taken then; ``again``: how to start over)."""
    n_obs, n_vars = recorded["shape"]
    if adata.n_vars != n_vars:
        raise ValueError(
            f"The AnnData has {adata.n_vars} genes, but {n_vars} were registered by "
            f"scvae.setup_anndata: genes were removed or added in place after setup (e.g. "
            f"by sc.pp.filter_genes). {again}"
        )
    if adata.n_obs != n_obs:
        raise ValueError(
            f"The AnnData has {adata.n_obs} cells, but {n_obs} were registered by "
            f"scvae.setup_anndata: cells were removed or added in place after setup (e.g. "
            f"by sc.pp.filter_cells). {again}"
        )
    gene_names = _gene_names_hash(adata)
    if recorded.get("gene_names", gene_names) != gene_names:
        raise ValueError(
            "The gene names of the AnnData (adata.var_names) changed after "
            "scvae.setup_anndata: the model reads the genes by position, under the names "
            f"it was trained with. {again}"
        )


def _check_same_counts(
    adata: AnnData, recorded: dict, now: dict, layer: str | None, setup: str
) -> None:
    """Raise a :class:`ValueError` if the sampled cells' totals or sums of squares moved
    between the ``recorded`` fingerprint and ``now``: the counts became NaN, or were
    normalised or log-transformed in place (``setup``: the setup call to run again)."""
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    changed = ~np.isclose(now["totals"], recorded["totals"], rtol=1e-6, atol=1e-6)
    changed |= ~np.isclose(now["squares"], recorded["squares"], rtol=1e-6, atol=1e-6)
    if not changed.any():
        return
    i = int(np.flatnonzero(changed)[0])
    cell = adata.obs_names[int(recorded["rows"][i])]
    if not np.isfinite(now["totals"][i]):
        raise ValueError(
            f"The registered counts in {where} hold NaN or infinite values since "
            f"scvae.setup_anndata (cell {cell!r}): restore the raw counts, or remove "
            f"the cells without finite counts, run {setup} again and build the model "
            "anew."
        )
    if layer is None:
        keep = (
            "sc.pp.log1p change adata.X unless given a layer). scvae models raw counts: "
            "keep them in a layer before normalising, adata.layers['counts'] = "
            "adata.X.copy(), and register that layer with "
            "scvae.setup_anndata(adata, layer='counts')."
        )
    else:
        keep = (
            f"sc.pp.log1p change the layer they are given, here layer={layer!r}). scvae "
            f"models raw counts: put them back in {where} and normalise adata.X or "
            "another layer instead."
        )
    raise ValueError(
        f"The registered counts in {where} changed after scvae.setup_anndata (cell "
        f"{cell!r} had a total of {recorded['totals'][i]:g}, now {now['totals'][i]:g}): "
        f"they look normalised or log-transformed in place (sc.pp.normalize_total and "
        f"{keep}"
    )


def fingerprint(matrix, adata: AnnData) -> dict:
    """Shape, gene-name hash, and per-cell totals and sums of squares of evenly spaced cells."""
    n_obs = matrix.shape[0]
    rows = np.unique(np.linspace(0, n_obs - 1, min(n_obs, N_FINGERPRINT_CELLS)).astype(int))
    chunk = matrix[rows]
    if sp.issparse(chunk):
        totals = np.asarray(chunk.sum(axis=1), dtype=np.float64).ravel()
        squares = np.asarray(chunk.multiply(chunk).sum(axis=1), dtype=np.float64).ravel()
    else:
        chunk = np.asarray(chunk, dtype=np.float64)
        totals, squares = chunk.sum(1), (chunk**2).sum(1)
    return {
        "shape": (int(matrix.shape[0]), int(matrix.shape[1])),
        "gene_names": _gene_names_hash(adata),
        "rows": rows,
        "totals": totals,
        "squares": squares,
    }


def _gene_names_hash(adata: AnnData) -> str:
    return hashlib.blake2b(
        "\x1f".join(map(str, adata.var_names)).encode(), digest_size=16
    ).hexdigest()


def registered_layer(adata_manager: AnnDataManager) -> str | None:
    """The layer the counts were registered from, ``None`` for ``adata.X``.

    Parameters
    ----------
    adata_manager
        Manager of the registered AnnData.
    """
    field = adata_manager.data_registry[REGISTRY_KEYS.X_KEY]
    return field.attr_key if field.attr_name == "layers" else None
