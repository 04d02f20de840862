"""User-facing GMVAE: clusters cells while it models their raw counts."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS, settings

from scvae._constants import DEFAULT_KEY, result_keys
from scvae.module import ComponentGMVAEModule, GMVAEModule
from scvae.train import ComponentInitialization

from ._base import ScvaeModel
from ._checks import check_architecture
from ._restarts import RESTART_SELECTIONS, train_restarts
from ._saved import migrated, read_saved_model
from ._schedule import default_component_init_epochs, default_kl_warmup_epochs, default_max_epochs

#: The GMVAE's inference models (see :class:`GMVAE`).
INFERENCES = ("responsibilities", "classifier", "per_component")
#: What a model saved before ``inference`` existed was built as.
SAVED_WITHOUT_INFERENCE = {"inference": "per_component"}


class GMVAE(ScvaeModel):
    """Gaussian-mixture VAE of raw UMI counts: a latent space and a clustering in one model.

    The prior over the latent space is a mixture of ``n_clusters`` Gaussians with a categorical
    cluster variable y; q(y | x) assigns each cell to a component. The ELBO sums over all
    components exactly.

    After :meth:`train`, the registered AnnData holds ``obsm["X_scvae"]`` (posterior mean of z),
    ``obs["scvae_cluster"]`` (argmax q(y|x)), ``obsm["scvae_cluster_probabilities"]`` and
    ``obs["scvae_cluster_confidence"]`` (max q(y|x)).

    Parameters
    ----------
    adata
        AnnData registered with :func:`scvae.setup_anndata`.
    n_clusters
        Number of mixture components K.
    inference
        The inference model. ``"responsibilities"``: one q(z | x) shared by every component,
        and q(y | x) the mixture's responsibilities given it (no network of its own);
        ``"classifier"``: the same q(z | x), with q(y | x) its own network (both
        :class:`~scvae.module.GMVAEModule`, one decoder pass per cell). ``"per_component"``:
        scVAE's q(y | x) q(z | x, y), one q(z | x, y) per component and K decoder passes per
        cell (:class:`~scvae.module.ComponentGMVAEModule`).
    n_latent
        Dimension of the latent space.
    n_hidden
        Width of each hidden layer, or the list of widths.
    n_layers
        Number of hidden layers when ``n_hidden`` is one width.
    likelihood
        Count likelihood, as for :class:`~scvae.VAE`.
    dispersion
        Inverse dispersion of NB/ZINB per ``"gene"``, ``"gene-batch"`` or ``"gene-cell"``.
    scale_by_library
        Scale the decoder's means by the cell's observed total count.
    piecewise_cutoff
        Cutoff of scVAE's piecewise categorical variant, or ``None``.
    prior
        ``"uniform"`` mixture weights p(y) (default) or ``"learned"`` ones.
    use_batch_norm
        Batch normalisation on hidden layers.
    dropout_rate
        Dropout on the encoders' hidden layers.
    encode_batch
        Also condition the encoders on the registered batch. By default they are whenever
        a ``batch_key`` was registered: the encoders can then remove the batch effect from z
        (the decoder adds it back), so that the clusters follow cell types, not batches.
    marginal_cluster_kl
        ``inference="per_component"`` only: regularise the minibatch-averaged cluster usage
        towards p(y) instead of each cell's q(y|x) (see
        :class:`~scvae.module.ComponentGMVAEModule`).
    component_spread
        Standard deviation of the initial component means; by default 1 for
        ``"per_component"`` and 0 (every component at the origin) otherwise.

    Attributes
    ----------
    restart_elbos_
        After ``train(n_restarts=n)`` with n > 1, the ELBO per cell on the training cells of
        each restart, in order; ``None`` otherwise.
    restart_agreements_
        After ``train(n_restarts=n)`` with n > 1, for each restart the mean adjusted Rand
        index of its clusters (on the training cells) with those of the other restarts: how
        much the clustering depends on the random start; ``None`` otherwise.

    Examples
    --------
    >>> scvae.setup_anndata(adata, layer="counts")
    >>> model = scvae.GMVAE(adata, n_clusters=10, likelihood="nb")
    >>> model.train()
    >>> sc.pl.umap(adata, color="scvae_cluster")
    """

    _module_cls = GMVAEModule

    def __init__(
        self,
        adata: AnnData | None = None,
        *,
        n_clusters: int = 10,
        inference: str = "per_component",
        n_latent: int = 10,
        n_hidden: int | Sequence[int] = 128,
        n_layers: int = 1,
        likelihood: str = "nb",
        dispersion: str = "gene",
        scale_by_library: bool = True,
        piecewise_cutoff: int | None = None,
        prior: str = "uniform",
        use_batch_norm: bool = True,
        dropout_rate: float = 0.1,
        encode_batch: bool | None = None,
        marginal_cluster_kl: bool = False,
        component_spread: float | None = None,
    ):
        widths = check_architecture(
            likelihood,
            dispersion,
            scale_by_library,
            piecewise_cutoff,
            n_latent,
            n_hidden,
            n_layers,
            dropout_rate,
        )
        if int(n_clusters) != n_clusters or n_clusters < 1:
            raise ValueError(f"n_clusters must be a positive integer, got {n_clusters}.")
        if inference not in INFERENCES:
            raise ValueError(f"inference={inference!r} is not one of {INFERENCES}.")
        if prior not in ("uniform", "learned"):
            raise ValueError(f"prior={prior!r} is not one of ('uniform', 'learned').")
        if marginal_cluster_kl and inference != "per_component":
            raise ValueError("marginal_cluster_kl=True is an option of inference='per_component'.")
        super().__init__(adata)
        self._require_integer_counts(piecewise_cutoff)
        if encode_batch is None:
            encode_batch = self.summary_stats.n_batch > 1
        if component_spread is None:
            component_spread = 1.0 if inference == "per_component" else 0.0
        self._module_kwargs = dict(
            n_input=self.summary_stats.n_vars,
            n_clusters=n_clusters,
            n_batch=self.summary_stats.n_batch,
            n_latent=n_latent,
            n_hidden=widths,
            likelihood=likelihood,
            dispersion=dispersion,
            scale_by_library=scale_by_library,
            piecewise_cutoff=piecewise_cutoff,
            prior=prior,
            use_batch_norm=use_batch_norm,
            dropout_rate=dropout_rate,
            encode_batch=encode_batch,
            component_spread=component_spread,
        )
        if inference == "per_component":
            self._module_kwargs["marginal_cluster_kl"] = marginal_cluster_kl
        else:
            self._module_kwargs["cluster_posterior"] = inference
        self.inference = inference
        self.module = self._build_module()
        self.restart_elbos_: np.ndarray | None = None
        self.restart_agreements_: np.ndarray | None = None
        self._model_summary_string = (
            f"scvae GMVAE: {n_clusters} clusters ({prior} prior, {inference} inference), "
            f"{likelihood} likelihood, {n_latent} latent, hidden {widths}"
        )
        self.init_params_ = self._get_init_params(locals())

    def _build_module(self) -> GMVAEModule | ComponentGMVAEModule:
        """A module with fresh weights (from the global random state)."""
        module_cls = ComponentGMVAEModule if self.inference == "per_component" else GMVAEModule
        return module_cls(**self._module_kwargs)

    def train(
        self,
        max_epochs: int | None = None,
        *,
        n_restarts: int = 1,
        restart_selection: str = "agreement",
        component_init_epochs: int | Sequence[int] | None = None,
        component_init_method: str = "kmeans",
        plan_kwargs: dict | None = None,
        annotate: bool = True,
        key_added: str = DEFAULT_KEY,
        **kwargs,
    ) -> None:
        """Train the model; see :meth:`scvae.model.ScvaeModel.train` for all options.

        Parameters
        ----------
        max_epochs
            Number of epochs (scvi-tools' rule by default: 400 up to 20,000 cells).
        n_restarts
            Train this many times (the first from the current weights, the others from fresh
            random ones) and keep one fit, chosen without labels by ``restart_selection``, as
            k-means keeps the best of its ``n_init`` starts. Each restart costs one full
            training; every restart's ELBO and agreement are left in :attr:`restart_elbos_` and
            :attr:`restart_agreements_`. If a restart fails, the model keeps the fit chosen
            among the finished ones and the error is raised (nothing is annotated).
        restart_selection
            ``"agreement"`` (default): keep the fit whose clusters agree most with the other
            fits' (highest mean adjusted Rand index on the training cells; ties, as with two
            restarts, go to the higher ELBO), the most typical clustering. ``"elbo"``: keep the
            fit with the highest ELBO on the training cells.
        component_init_epochs
            After each of these numbers of epochs, the mixture components are placed on
            clusters of the latent means (:class:`~scvae.train.ComponentInitialization`);
            ``0`` or ``()`` keeps the initial placement. Default: half-way through training
            and again after 90% of the epochs.
        component_init_method
            ``"kmeans"`` (default) or ``"gaussian_mixture"``: how the latent means are
            clustered at each placement.
        plan_kwargs
            Passed to :class:`~scvae.train.ScvaeTrainingPlan`. Unless it sets
            ``n_epochs_kl_warmup`` or ``n_steps_kl_warmup``, the KL warm-up lasts the first
            30% of the epochs.
        annotate
            When training ends, write the results into the registered AnnData
            (:meth:`annotate`); with restarts, those of the kept fit.
        key_added
            Where :meth:`annotate` writes them.
        **kwargs
            As for :meth:`scvae.model.ScvaeModel.train`.
        """
        if int(n_restarts) != n_restarts or n_restarts < 1:
            raise ValueError(f"n_restarts must be a positive integer, got {n_restarts}.")
        if restart_selection not in RESTART_SELECTIONS:
            raise ValueError(
                f"restart_selection must be one of {RESTART_SELECTIONS}, got {restart_selection!r}."
            )
        self.restart_elbos_ = self.restart_agreements_ = None
        if max_epochs is None:
            max_epochs = default_max_epochs(self.adata.n_obs)
        if component_init_epochs is None:
            component_init_epochs = default_component_init_epochs(max_epochs)
        # Validates the method before any training starts.
        initialization = ComponentInitialization(
            component_init_epochs, seed=settings.seed or 0, method=component_init_method
        )
        late = [epoch for epoch in initialization.epochs if epoch > max_epochs]
        if late:
            raise ValueError(
                f"component_init_epochs {late} are beyond max_epochs={max_epochs}: the "
                "components would never be placed. Use epochs <= max_epochs."
            )
        plan_kwargs = dict(plan_kwargs or {})
        if not {"n_epochs_kl_warmup", "n_steps_kl_warmup"} & plan_kwargs.keys():
            plan_kwargs["n_epochs_kl_warmup"] = default_kl_warmup_epochs(max_epochs)
        if initialization.epochs:
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), initialization]

        def fit(annotate_fit: bool) -> None:
            super(GMVAE, self).train(
                max_epochs,
                plan_kwargs=plan_kwargs,
                annotate=annotate_fit,
                key_added=key_added,
                **kwargs,
            )

        if n_restarts == 1:
            fit(annotate)
            return
        train_restarts(self, int(n_restarts), restart_selection, lambda: fit(False))
        if annotate:
            self.annotate(key_added=key_added)

    def _training_elbo(self) -> float:
        """ELBO per cell on the training cells, from the same draws of z for every fit."""
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return self.get_elbo(indices=self.train_indices)

    def summary(self) -> dict[str, Any]:
        """:meth:`scvae.model.ScvaeModel.summary`, plus ``n_clusters``, ``inference`` and,
        after restarts, each restart's ELBO and agreement."""
        summary = {**super().summary(), "n_clusters": self.n_clusters, "inference": self.inference}
        if self.restart_elbos_ is not None:
            summary["restart_elbos"] = self.restart_elbos_.tolist()
            summary["restart_agreements"] = self.restart_agreements_.tolist()
        return summary

    @property
    def n_clusters(self) -> int:
        """Number of mixture components K."""
        return self.module.n_clusters

    @torch.inference_mode()
    def _posterior(
        self, adata: AnnData | None, indices: Sequence[int] | None, batch_size: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stream the data once; return E_q[z] (cells x latent) and q(y|x) (cells x K)."""
        self._check_if_trained(warn=False)
        adata = self._validate_anndata(adata)
        latents, probabilities = [], []
        for tensors in self._make_data_loader(adata, indices=indices, batch_size=batch_size):
            z_mean, _, qy = self.module.posterior_summary(tensors)
            latents.append(z_mean.cpu())
            probabilities.append(qy.cpu())
        return torch.cat(latents).numpy(), torch.cat(probabilities).numpy()

    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Posterior mean of z (cells x latent); for ``"per_component"`` inference,
        :math:`\\sum_k q(k \\mid x) E[z \\mid x, k]`.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the model's.
        indices
            Cells to use; all by default.
        batch_size
            Cells per forward pass (memory stays bounded by it).
        """
        return self._posterior(adata, indices, batch_size)[0]

    def predict(
        self,
        adata: AnnData | None = None,
        soft: bool = False,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray | pd.DataFrame:
        """Cluster of each cell.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the model's.
        soft
            Return q(y|x) as a cells x K DataFrame instead of the argmax.
        indices
            Cells to use; all by default.
        batch_size
            Cells per forward pass.

        Returns
        -------
        Integer cluster per cell, or the DataFrame of cluster probabilities.
        """
        probabilities = self._posterior(adata, indices, batch_size)[1]
        if not soft:
            return probabilities.argmax(1)
        adata = self._validate_anndata(adata)
        obs_names = adata.obs_names if indices is None else adata.obs_names[np.asarray(indices)]
        return pd.DataFrame(probabilities, index=obs_names, columns=self._cluster_names())

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

        Writes ``obsm["X_scvae"]``, ``obs["scvae_cluster"]`` (categorical, unused components
        dropped), ``obsm["scvae_cluster_probabilities"]`` (cells x K) and
        ``obs["scvae_cluster_confidence"]``. Works for the training data and for any query
        AnnData with the registered genes.

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
        latent, probabilities = self._posterior(adata, None, batch_size)
        clusters = pd.Categorical(
            np.asarray(self._cluster_names())[probabilities.argmax(1)],
            categories=self._cluster_names(),
        ).remove_unused_categories()
        keys = result_keys(key_added)
        adata.obsm[keys["latent"]] = latent
        adata.obsm[keys["probabilities"]] = probabilities
        adata.obs[keys["cluster"]] = pd.Categorical(clusters)
        adata.obs[keys["confidence"]] = probabilities.max(1)

    def get_cluster_profiles(self, transform_batch: int = 0) -> pd.DataFrame:
        """Expected normalised expression at each component's mean (K x genes).

        Decodes the mean :math:`\\mu_k` of each p(z | y=k); rows sum to one.

        Parameters
        ----------
        transform_batch
            Batch code to decode as, when a batch was registered.
        """
        self._check_if_trained(warn=False)
        profiles = self.module.eval().component_profiles(transform_batch)
        return pd.DataFrame(
            profiles.cpu().numpy(), index=self._cluster_names(), columns=self.adata.var_names
        )

    def sample(
        self,
        n: int,
        cluster: int | None = None,
        library_size: float | None = None,
        transform_batch: int = 0,
        seed: int | None = None,
    ) -> np.ndarray:
        """Draw counts for ``n`` new cells from the generative model.

        Parameters
        ----------
        n
            Number of cells.
        cluster
            Draw all cells from this component; by default y is drawn from p(y).
        library_size
            Total count of each simulated cell (for library-scaled likelihoods); by default
            drawn from the registered cells' observed totals.
        transform_batch
            Batch code to decode as.
        seed
            Seed of the random draws.

        Returns
        -------
        Counts, ``n`` x genes.
        """
        self._check_if_trained(warn=False)
        if cluster is not None and not 0 <= cluster < self.n_clusters:
            raise ValueError(f"cluster={cluster} is not in 0..{self.n_clusters - 1}.")
        generator = np.random.default_rng(seed)
        if seed is not None:
            torch.manual_seed(seed)
        if library_size is None:
            totals = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY).sum(axis=1)
            library = generator.choice(np.asarray(totals).ravel(), size=n)
        else:
            library = np.full(n, library_size)
        library = torch.as_tensor(library, dtype=torch.float32)[:, None]
        counts = self.module.eval().sample_prior(library, cluster, transform_batch)
        return counts.cpu().numpy()

    @classmethod
    def load(cls, dir_path: str, adata: AnnData | None = None, prefix: str | None = None, **kwargs):
        """Load a GMVAE saved with :meth:`save`; see :meth:`scvae.model.ScvaeModel.load`.

        A model saved by scvae 0.1.0 (before ``inference`` existed) loads as the
        ``"per_component"`` model it is.
        """
        saved = read_saved_model(dir_path, prefix)
        with migrated(dir_path, prefix, saved, SAVED_WITHOUT_INFERENCE) as path:
            return super().load(path, adata=adata, prefix=prefix, **kwargs)
