"""What a trained GMVAE generates: each cluster's expected expression, and new cells."""

import numpy as np
import pandas as pd
import torch
from scvi import REGISTRY_KEYS

from scvae._arguments import integer_at_least, is_real
from scvae._random import seeded
from scvae.data import row_totals


class ClusterGenerationMixin:
    """The GMVAE's generative queries (a mixin of :class:`~scvae.GMVAE`, whose module
    provides ``component_profiles`` and ``sample_prior``, and whose
    :class:`~scvae.model._cluster_queries.ClusterQueriesMixin` names the clusters)."""

    def _component_weights(self) -> np.ndarray:
        """Each component's share of its cluster (by cells), for profiles and sampling."""
        sizes = np.asarray(self.component_sizes_, dtype=float) + 1e-12
        totals = np.bincount(self.component_clusters_, weights=sizes)
        return sizes / totals[self.component_clusters_]

    def _batch_code(self, transform_batch: int | str) -> int:
        """The code of a registered batch given by its name (as in scvi-tools'
        ``transform_batch``) or by its code."""
        categories = list(
            self.adata_manager.get_state_registry(REGISTRY_KEYS.BATCH_KEY).categorical_mapping
        )
        if transform_batch in categories:
            return categories.index(transform_batch)
        if isinstance(transform_batch, int | np.integer) and 0 <= transform_batch < len(categories):
            return int(transform_batch)
        raise ValueError(
            f"transform_batch={transform_batch!r} is not a registered batch: give one of "
            f"{', '.join(map(str, categories))} or its code (0 to {len(categories) - 1})."
        )

    def get_cluster_profiles(self, *, transform_batch: int | str = 0) -> pd.DataFrame:
        """Expected normalised expression of each cluster (clusters x genes).

        Decodes the mean :math:`\\mu_k` of each p(z | y=k) (with the piecewise-categorical
        likelihood, whose shape depends on the total count, for a cell of the registered
        cells' median total count); rows sum to one. With ``n_clusters="auto"``, a cluster's
        profile is the mixture of its components' profiles, weighted by their cells.

        Parameters
        ----------
        transform_batch
            The registered batch to decode as, by name or code.
        """
        self._check_if_trained(warn=False)
        batch = self._batch_code(transform_batch)
        # Only the piecewise-categorical likelihood's shape depends on the total count.
        piecewise = self.module.decoder.piecewise_cutoff is not None
        self._check_registered_data(counts=piecewise)  # the columns are the registered genes
        library = np.median(self._registered_totals()) if piecewise else 1.0
        profiles = self.module.eval().component_profiles(batch, library).cpu().numpy()
        if self.component_clusters_ is not None:
            groups = np.eye(self.n_clusters)[self.component_clusters_]
            profiles = (groups * self._component_weights()[:, None]).T @ profiles
        return pd.DataFrame(profiles, index=self._cluster_names(), columns=self.adata.var_names)

    def sample(
        self,
        n: int,
        *,
        cluster: int | None = None,
        library_size: float | None = None,
        transform_batch: int | str = 0,
        seed: int | None = None,
    ) -> np.ndarray:
        """Draw counts for ``n`` new cells from the generative model.

        Parameters
        ----------
        n
            Number of cells.
        cluster
            Draw all cells from this cluster, by code or by its name in
            ``obs["scvae_cluster"]`` (``"3"``); by default y is drawn from p(y).
        library_size
            Total count of each simulated cell (for library-scaled likelihoods); by default
            drawn from the registered cells' observed totals.
        transform_batch
            The registered batch to decode as, by name or code.
        seed
            Seed of the random draws; ``None``: the session's random state (which
            ``scvi.settings.seed`` sets) draws them.

        Returns
        -------
        Counts, ``n`` x genes.
        """
        self._check_if_trained(warn=False)
        # The columns are the registered genes, and the totals drawn the registered cells'.
        self._check_registered_data(counts=library_size is None)
        if not integer_at_least(n, 1):
            raise ValueError(f"n must be a positive integer (the number of cells), got {n!r}.")
        names = self._cluster_names()
        if cluster is not None and str(cluster) in names and np.ndim(cluster) == 0:
            cluster = names.index(str(cluster))  # a code, or a name written into obs
        elif cluster is not None:
            raise ValueError(f"cluster={cluster!r} is not one of {names} (or their codes).")
        positive = is_real(library_size) and np.isfinite(library_size) and library_size > 0
        if library_size is not None and not positive:
            raise ValueError(
                "library_size is the total count of each new cell, a positive number; got "
                f"{library_size!r}."
            )
        batch = self._batch_code(transform_batch)
        # Unseeded, from NumPy's global state, which scvi.settings.seed seeds, not the OS's.
        session = np.random.randint(2**32) if seed is None else seed  # noqa: NPY002
        generator = np.random.default_rng(session)
        if library_size is None:
            library = generator.choice(self._registered_totals(), size=n)
        else:
            library = np.full(n, library_size)
        library = torch.as_tensor(library, dtype=torch.float32)[:, None]
        with seeded(seed, self.device):  # reproducible, without reseeding the session
            return self._sample_counts(library, cluster, batch, generator)

    def _sample_counts(
        self, library: torch.Tensor, cluster: int | None, batch: int, generator
    ) -> np.ndarray:
        """Counts of one new cell per entry of ``library`` (see :meth:`sample`)."""
        module = self.module.eval()
        if cluster is None or self.component_clusters_ is None:
            return module.sample_prior(library, cluster, batch).cpu().numpy()
        # A cluster of several components: each cell from one of them, by their cells.
        n = len(library)
        weights = np.where(self.component_clusters_ == cluster, self._component_weights(), 0)
        drawn = generator.choice(self.n_components, size=n, p=weights / weights.sum())
        counts = np.zeros((n, self.adata.n_vars), dtype=np.float32)
        for component in np.unique(drawn):
            rows = np.flatnonzero(drawn == component)
            counts[rows] = module.sample_prior(library[rows], int(component), batch).cpu().numpy()
        return counts

    def _registered_totals(self) -> np.ndarray:
        """The observed total count of each registered cell (in memory or backed)."""
        return row_totals(self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY))
