"""The registered labels, which no scvae model uses to embed cells."""

import numpy as np
import pandas as pd
from anndata import AnnData
from scvi.data.fields import CategoricalObsField


class LabelsField(CategoricalObsField):
    """scvi-tools' :class:`~scvi.data.fields.CategoricalObsField` for ``labels_key``, lenient
    where the labels do not matter.

    scvae's models never read the labels (they are kept for scoring and for scvi-tools'
    queries that group cells), so an AnnData the setup is transferred to (a query) may lack
    the labels column, or hold labels the registration did not, or none (NaN): labels not
    registered extend the categories, and cells without one are registered as
    :data:`UNLABELLED`, where scvi-tools' field refuses the query.

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

    def transfer_field(self, state_registry: dict, adata_target: AnnData, **kwargs) -> dict:
        """Register the target's labels under the registered categories, extended by its
        own and by :data:`UNLABELLED` where needed."""
        if self.labels_key is None:
            return super().transfer_field(state_registry, adata_target, **kwargs)
        obs = adata_target.obs
        if self.labels_key in obs:
            labels = obs[self.labels_key].astype(object)
            labels = labels.where(labels.notna(), self.UNLABELLED)
        else:
            labels = pd.Series(self.UNLABELLED, index=obs.index, dtype=object)
        mapping = list(state_registry[self.CATEGORICAL_MAPPING_KEY])
        mapping += [label for label in pd.unique(labels) if label not in mapping]
        obs[self.attr_key] = pd.Categorical(labels, categories=mapping).codes.astype(np.int64)
        return {
            self.CATEGORICAL_MAPPING_KEY: np.asarray(mapping, dtype=object),
            self.ORIGINAL_ATTR_KEY: self.labels_key,
        }
