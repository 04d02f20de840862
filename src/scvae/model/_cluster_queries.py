"""What a trained GMVAE answers about cells: latent means and clusters (cut again on demand).
What it generates (profiles, new cells) is in :mod:`scvae.model._cluster_generation`."""

import dataclasses
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from scvae._arguments import check_flag
from scvae._random import random_state_kept
from scvae._result_keys import DEFAULT_KEY, check_key_added, result_keys
from scvae._warnings import warn

from ._annotation import write_clusters
from ._cluster_selection import cluster_use
from ._training_checks import check_results_keep_off_registered_columns


class ClusterQueriesMixin:
    """The GMVAE's queries (a mixin of :class:`~scvae.GMVAE`, whose module provides
    ``posterior_summary``, ``component_profiles`` and ``sample_prior``)."""

    @torch.inference_mode()
    def _posterior(
        self,
        adata: AnnData | None,
        indices: Sequence[int] | None,
        batch_size: int | None,
        components: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stream the data once; return E_q[z] (cells x latent) and the cluster probabilities
        (cells x clusters; with ``components``, q(y|x) over the mixture components)."""
        self._check_if_trained(warn=False)
        adata = self._validate_anndata(adata)
        latents, probabilities = [], []
        with random_state_kept(self.device):  # the loader and inference draw, uselessly here
            for tensors in self._query_loader(adata, indices, batch_size):
                z_mean, _, qy = self.module.posterior_summary(tensors)
                latents.append(z_mean.cpu())
                probabilities.append(qy.cpu())
        probabilities = torch.cat(probabilities).numpy()
        if not components:
            probabilities = self._cluster_probabilities(probabilities)
        return torch.cat(latents).numpy(), probabilities

    def _cluster_probabilities(self, component_probabilities: np.ndarray) -> np.ndarray:
        """q(y|x) over the mixture components (cells x components) as probabilities of the
        clusters: a cluster's probability is the sum of its components'."""
        if self.component_clusters_ is None:
            return component_probabilities
        groups = np.eye(self.n_clusters, dtype=component_probabilities.dtype)
        return component_probabilities @ groups[self.component_clusters_]

    @torch.inference_mode()
    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        give_mean: bool = True,
        mc_samples: int = 5_000,
        batch_size: int | None = None,
        return_dist: bool = False,
        dataloader: Iterable[dict] | None = None,
        **data_loader_kwargs: Any,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Posterior mean of z (cells x latent); for ``"per_component"`` inference,
        :math:`\\sum_k q(k \\mid x) E[z \\mid x, k]`.

        The arguments are those of scvi-tools'
        :meth:`~scvi.model.base.VAEMixin.get_latent_representation`, so that its functions
        built on it (e.g. ``get_aggregated_posterior``) work on a GMVAE.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the model's.
        indices
            Cells to use, as positions or a boolean mask; all by default.
        give_mean
            The posterior mean (exact); ``False``: one draw of z per cell from q(z | x).
        mc_samples
            Not used: the posterior mean is exact (kept for scvi-tools' signature).
        batch_size
            Cells per forward pass (memory stays bounded by it).
        return_dist
            Return the posterior mean and variance of z (for ``"per_component"``, those of
            the mixture :math:`\\sum_k q(k \\mid x) q(z \\mid x, k)`).
        dataloader
            Minibatches to read instead of ``adata`` (then ``adata`` must be ``None``).
        **data_loader_kwargs
            scvi-tools' loader options; those that only tune fetching (``num_workers``)
            are taken and ignored, others refused (:class:`~scvae.data.TensorDataLoader`).

        Returns
        -------
        ``(cells, n_latent)``, or with ``return_dist`` the means and the variances.
        """
        self._check_if_trained(warn=False)
        latents, variances = [], []
        keep = random_state_kept(self.device) if give_mean or return_dist else nullcontext()
        with keep:  # a fixed answer leaves the session's random state as it was
            for tensors in self._query_minibatches(
                adata, indices, batch_size, dataloader, **data_loader_kwargs
            ):
                if give_mean or return_dist:
                    mean, variance, _ = self.module.posterior_summary(tensors)
                    latents.append(mean.cpu())
                    variances.append(variance.cpu())
                else:
                    inputs = self.module._get_inference_input(tensors)
                    latents.append(self.module.inference(**inputs)["z"].cpu())
        if return_dist:
            return torch.cat(latents).numpy(), torch.cat(variances).numpy()
        return torch.cat(latents).numpy()

    def predict(
        self,
        adata: AnnData | None = None,
        *,
        soft: bool = False,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        components: bool = False,
    ) -> np.ndarray | pd.DataFrame:
        """Cluster of each cell.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the model's.
        soft
            Return q(y|x) as a cells x K DataFrame instead of the argmax.
        indices
            Cells to use, as positions or a boolean mask; all by default.
        batch_size
            Cells per forward pass.
        components
            Mixture components instead of clusters (they differ with ``n_clusters="auto"``,
            where a cluster is a group of components).

        Returns
        -------
        Integer cluster per cell, or the DataFrame of cluster probabilities.
        """
        check_flag(soft, "soft")
        probabilities = self._posterior(adata, indices, batch_size, components)[1]
        if not soft:
            return probabilities.argmax(1)
        adata = self._validate_anndata(adata)
        obs_names = adata.obs_names if indices is None else adata.obs_names[np.asarray(indices)]
        names = [str(k) for k in range(probabilities.shape[1])]
        return pd.DataFrame(probabilities, index=obs_names, columns=names)

    def _cluster_names(self) -> list[str]:
        return [str(k) for k in range(self.n_clusters)]

    def annotate(
        self,
        adata: AnnData | None = None,
        *,
        batch_size: int | None = None,
        key_added: str = DEFAULT_KEY,
    ) -> None:
        """Write latent means and cluster assignments into ``adata``.

        Writes ``obsm["X_scvae"]``, ``obs["scvae_cluster"]`` (categorical, unused clusters
        dropped), ``obsm["scvae_cluster_probabilities"]`` (cells x clusters),
        ``obs["scvae_cluster_confidence"]`` and, once the components' hierarchy is known,
        ``uns["dendrogram_scvae_cluster"]`` (the clusters' hierarchy, drawn by
        ``sc.pl.dendrogram(adata, "scvae_cluster")`` and by scanpy's plots with
        ``dendrogram=True``). Works for the training data and for any query AnnData with the
        registered genes.

        Parameters
        ----------
        adata
            AnnData to annotate; defaults to the one the model was set up with.
        batch_size
            Cells per forward pass.
        key_added
            Prefix of the keys: ``obsm[f"X_{key_added}"]``, ``obs[f"{key_added}_cluster"]``,
            ``obsm[f"{key_added}_cluster_probabilities"]``,
            ``obs[f"{key_added}_cluster_confidence"]``.
        """
        adata = self._validate_anndata(adata)
        check_results_keep_off_registered_columns(self.adata_manager, key_added)
        self._write_annotation(adata, *self._posterior(adata, None, batch_size), key_added)
        if adata is self.adata:
            self.key_added_ = key_added

    def _write_annotation(
        self, adata: AnnData, latent: np.ndarray, probabilities: np.ndarray, key_added: str
    ) -> None:
        """Write :meth:`annotate`'s results, from every cell's latent mean and cluster
        probabilities, into ``adata`` (:func:`write_clusters`)."""
        hierarchy = None if self.cluster_selection_ is None else self._cluster_hierarchy()
        write_clusters(adata, result_keys(key_added), latent, probabilities, hierarchy)

    def select_clusters(
        self,
        n_clusters: int | None = None,
        *,
        separability: float | None = None,
        annotate: bool = True,
        key_added: str | None = None,
    ) -> None:
        """Choose the clusters again from the components' hierarchy, without training.

        The clusters are groups of the mixture's components, cut from the hierarchy of their
        merges (:attr:`cluster_selection_`, drawn by :func:`scvae.pl.cluster_selection`):
        training cuts it where every pair of clusters is at least
        :data:`~scvae.model.SEPARABILITY_THRESHOLD` separable. This cuts the same hierarchy
        elsewhere: into ``n_clusters`` clusters, or at another ``separability`` (higher:
        fewer, coarser clusters), like a resolution over one hierarchy; a fixed-K model's
        components merge too. Give one of ``n_clusters`` and ``separability``. Costs one
        pass over the cells (to write the new clusters), no training.

        Parameters
        ----------
        n_clusters
            Number of clusters, from 1 to :attr:`n_components`.
        separability
            Separability, in (0, 1], that two groups of components need to remain two
            clusters.
        annotate
            Write the new clusters into the registered AnnData (:meth:`annotate`).
        key_added
            Where :meth:`annotate` writes them; by default where the clusters were last
            written (:attr:`key_added_`).
        """
        self._check_if_trained(warn=False)
        if self.cluster_selection_ is None:
            raise ValueError(
                "The model has no cluster hierarchy (saved before scvae computed one, or its "
                "last fit failed): train it."
            )
        selection = self.cluster_selection_.cut(n_clusters=n_clusters, threshold=separability)
        key_added = self.key_added_ if key_added is None else key_added
        check_key_added(key_added)  # before anything changes
        check_results_keep_off_registered_columns(self.adata_manager, key_added)
        self._check_registered_data()
        self.cluster_selection_ = selection
        self.component_clusters_ = selection.component_clusters
        results = self._finish_clusters()
        if annotate:
            self._annotate_registered(key_added, *results)

    def _finish_clusters(
        self, posterior: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Record the clusters' use and return every registered cell's latent mean and
        cluster probabilities, for :meth:`_annotate_registered`; ``posterior``: their latent
        means and q(y|x) over the components, when already computed (otherwise one pass over
        the cells computes them)."""
        if posterior is None:
            posterior = self._posterior(None, None, None, components=True)
        latent, probabilities = posterior[0], self._cluster_probabilities(posterior[1])
        self._record_cluster_use(probabilities.argmax(1))
        return latent, probabilities

    def _annotate_registered(
        self, key_added: str, latent: np.ndarray, probabilities: np.ndarray
    ) -> None:
        """Write :meth:`_finish_clusters`'s results into the registered AnnData."""
        self._write_annotation(self.adata, latent, probabilities, key_added)
        self.key_added_ = key_added

    def _record_cluster_use(self, clusters: np.ndarray) -> None:
        """Keep the cells per cluster and warn when clusters are (nearly) empty."""
        self.cluster_sizes_ = np.bincount(clusters, minlength=self.n_clusters)
        self.n_clusters_used_, message = cluster_use(self.cluster_sizes_)
        if message is not None:
            warn(message)

    def _cluster_hierarchy(self):
        """The merges over the clusters: those of the components, clusters as the leaves."""
        selection = self.cluster_selection_
        if self.component_clusters_ is None:  # fixed K: every component is a cluster
            return dataclasses.replace(
                selection,
                n_clusters=self.n_clusters,
                component_clusters=np.arange(self.n_clusters),
            )
        return selection
