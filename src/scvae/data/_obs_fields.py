"""The registered batch and labels columns: scvi-tools' categorical fields, adapted to what
scvae's models do with them; and the fields every model registers."""

from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.data.fields import CategoricalObsField

from ._fields import CountLayerField


class LabelsField(CategoricalObsField):
    """scvi-tools' :class:`~scvi.data.fields.CategoricalObsField` for ``labels_key``, lenient
    where the labels do not matter.

    scvae's models never read the labels (they are kept for scoring and for scvi-tools'
    queries that group cells), so cells may have none (NaN), as in partly annotated data,
    and an AnnData the setup is transferred to (a query) may lack the labels column or hold
    labels the registration did not: labels not registered extend the categories, and cells
    without one are registered as :data:`UNLABELLED`, where scvi-tools' field refuses them.

    Parameters
    ----------
    registry_key
        Key of the field in the data registry.
    labels_key
        ``adata.obs`` column of the labels, or ``None``.
    """

    #: Category of the cells of a query without a label.
    UNLABELLED = "unlabelled"

    def __init__(self, registry_key: str, labels_key: str | None):
        super().__init__(registry_key, labels_key)
        self.labels_key = labels_key

    def register_field(self, adata: AnnData) -> dict:
        """Register the labels as scvi-tools does; if some cells have none, as text with
        :data:`UNLABELLED` for those cells.

        Parameters
        ----------
        adata
            AnnData to register.
        """
        if self.labels_key is None or not adata.obs[self.labels_key].isna().any():
            return super().register_field(adata)
        return self._register_as_text(adata, [])

    def transfer_field(self, state_registry: dict, adata_target: AnnData, **kwargs: Any) -> dict:
        """Register the target's labels under the registered categories, extended by its
        own and by :data:`UNLABELLED` where needed.

        Parameters
        ----------
        state_registry
            The field's state recorded at registration.
        adata_target
            AnnData the setup is transferred to.
        **kwargs
            Without ``labels_key``, passed to scvi-tools' field (``extend_categories``); unused
            with it: labels not registered always extend the categories.
        """
        if self.labels_key is None:
            return super().transfer_field(state_registry, adata_target, **kwargs)
        # As text, so that registered labels of any type (integers, say) and new ones, or
        # UNLABELLED, make one mapping of one type (scvi-tools sorts it); a registered
        # label keeps its code.
        registered = [str(label) for label in state_registry[self.CATEGORICAL_MAPPING_KEY]]
        return self._register_as_text(adata_target, registered)

    def _register_as_text(self, adata: AnnData, registered: list[str]) -> dict:
        """Codes of the labels as text (:data:`UNLABELLED` where missing) in the mapping
        ``registered``, extended by the labels it lacks."""
        obs = adata.obs
        if self.labels_key in obs:
            labels = obs[self.labels_key].astype(object)
            labels = labels.where(labels.notna(), self.UNLABELLED).map(str)
        else:
            labels = pd.Series(self.UNLABELLED, index=obs.index, dtype=object)
        mapping = registered + sorted(set(pd.unique(labels)) - set(registered))
        obs[self.attr_key] = pd.Categorical(labels, categories=mapping).codes.astype(np.int64)
        return {
            self.CATEGORICAL_MAPPING_KEY: np.asarray(mapping, dtype=object),
            self.ORIGINAL_ATTR_KEY: self.labels_key,
        }


class BatchField(CategoricalObsField):
    """scvi-tools' :class:`~scvi.data.fields.CategoricalObsField` for ``batch_key``,
    registering only the batches that have cells, and registering them again by name.

    A categorical column may list categories that no cell has (set explicitly, or so read
    from a file); registered, such a batch would count
    towards the number of batches (which turns the encoders' batch input on) and be accepted
    in queries as a batch the model knows, though it never trained on a cell of it.

    scvi-tools registers an AnnData again when another setup was made after this one (as
    :func:`scvae.setup_anndata` does, once per model class). The column is then coded by the
    batches first registered, by name, as a transfer to new data is: categories reordered in
    the meantime (for a plot) keep their codes, and batches that were not registered are
    refused, as the models take each cell's batch code as an input.

    Parameters
    ----------
    registry_key
        Key of the field in the data registry.
    batch_key
        ``adata.obs`` column of the batches, or ``None``.
    """

    def __init__(self, registry_key: str, batch_key: str | None):
        super().__init__(registry_key, batch_key)
        self.batch_key = batch_key
        self._batches: np.ndarray | None = None  # of the first registration

    def register_field(self, adata: AnnData) -> dict:
        """Register the batches as scvi-tools does, then drop those without cells; registered
        again, code them by the batches of the first registration.

        Parameters
        ----------
        adata
            AnnData to register.

        Raises
        ------
        ValueError
            Registered again, the column holds batches the first registration did not.
        """
        if self.batch_key is not None and self._batches is not None:
            return self._register_again(adata)
        state = super().register_field(adata)
        codes = adata.obs[self.attr_key].to_numpy()
        present = np.unique(codes)
        mapping = state[self.CATEGORICAL_MAPPING_KEY]
        if self.batch_key is not None and len(present) < len(mapping):
            adata.obs[self.attr_key] = np.searchsorted(present, codes)
            state[self.CATEGORICAL_MAPPING_KEY] = mapping[present]
        self._batches = state[self.CATEGORICAL_MAPPING_KEY]
        return state

    def _register_again(self, adata: AnnData) -> dict:
        column = adata.obs[self.batch_key]
        codes = pd.Categorical(column.to_numpy(), categories=self._batches).codes
        if (codes < 0).any():
            unknown = pd.unique(column.to_numpy()[codes < 0])
            raise ValueError(
                f"adata.obs[{self.batch_key!r}] changed after setup: it holds batches that "
                f"were not registered, {_plain(unknown[:3])} (registered: "
                f"{_plain(self._batches[:10])}), and the models set up on it take each "
                "cell's batch as an input. Restore the column, or run scvae.setup_anndata "
                "again (and train new models)."
            )
        adata.obs[self.attr_key] = codes.astype(np.int64)
        return {
            self.CATEGORICAL_MAPPING_KEY: self._batches.copy(),
            self.ORIGINAL_ATTR_KEY: self.batch_key,
        }


def _plain(values) -> list:
    """``values`` as a list of Python scalars, for messages (``1``, not ``np.int64(1)``)."""
    return [value.item() if isinstance(value, np.generic) else value for value in values]


def count_fields(
    layer: str | None,
    batch_key: str | None,
    labels_key: str | None,
    *,
    allow_non_integer: bool = False,
) -> list:
    """The fields every scvae model registers (the raw counts, the batch and the labels
    columns), under scvi-tools' registry keys.

    Parameters
    ----------
    layer
        Layer holding the raw counts, ``None`` for ``adata.X``.
    batch_key
        ``adata.obs`` column of the batches, or ``None``.
    labels_key
        ``adata.obs`` column of the labels, or ``None``.
    allow_non_integer
        Accept non-negative non-integer counts in the AnnData a setup is transferred to.
    """
    return [
        CountLayerField(REGISTRY_KEYS.X_KEY, layer, allow_non_integer=allow_non_integer),
        BatchField(REGISTRY_KEYS.BATCH_KEY, batch_key),
        LabelsField(REGISTRY_KEYS.LABELS_KEY, labels_key),
    ]
