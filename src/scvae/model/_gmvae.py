"""User-facing GMVAE: clusters cells while it models their raw counts."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS, settings
from scvi.model._utils import get_max_epochs_heuristic
from sklearn.metrics import adjusted_rand_score

from scvae._constants import (
    CLUSTER_CONFIDENCE_KEY,
    CLUSTER_KEY,
    CLUSTER_PROBABILITIES_KEY,
    LATENT_KEY,
    Dispersion,
    Likelihood,
)
from scvae.module import GMVAEModule
from scvae.train import ComponentInitialization

from ._base import ScvaeModel, check_architecture

#: How :meth:`GMVAE.train` picks one of its restarts.
RESTART_SELECTIONS = ("elbo", "agreement")


def default_component_init_epochs(max_epochs: int) -> tuple[int, ...]:
    """Epochs after which :meth:`GMVAE.train` places the components: 50% and 90% of training."""
    return tuple(sorted({max(1, max_epochs // 2), max(1, (9 * max_epochs) // 10)}))


def mean_agreements(clusters: Sequence[np.ndarray]) -> np.ndarray:
    """Mean adjusted Rand index of each partition with each of the others (``nan`` alone)."""
    n = len(clusters)
    agreement = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            agreement[i, j] = agreement[j, i] = adjusted_rand_score(clusters[i], clusters[j])
    return agreement.sum(1) / (n - 1) if n > 1 else np.full(n, np.nan)


def select_restart(elbos: np.ndarray, agreements: np.ndarray, selection: str) -> int:
    """Index of the restart that ``restart_selection=selection`` keeps (see :meth:`GMVAE.train`).

    ``"elbo"``: the highest ELBO; ``"agreement"``: the highest agreement, ties to the higher ELBO.
    """
    keys = (elbos, agreements) if selection == "agreement" else (elbos,)
    return int(np.lexsort(keys)[-1])  # lexsort sorts by its last key first


class GMVAE(ScvaeModel):
    """Gaussian-mixture VAE of raw UMI counts: a latent space and a clustering in one model.

    The prior over the latent space is a mixture of ``n_clusters`` Gaussians with a categorical
    cluster variable y; q(y | x) assigns each cell to a component. The ELBO sums over all
    components exactly (see :class:`~scvae.module.GMVAEModule`).

    After :meth:`train`, the registered AnnData holds ``obsm["X_scvae"]`` (posterior mean of z),
    ``obs["scvae_cluster"]`` (argmax q(y|x)), ``obsm["scvae_cluster_probabilities"]`` and
    ``obs["scvae_cluster_confidence"]`` (max q(y|x)).

    Parameters
    ----------
    adata
        AnnData registered with :func:`scvae.setup_anndata`.
    n_clusters
        Number of mixture components K.
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
        Regularise the minibatch-averaged cluster usage towards p(y) instead of each cell's
        q(y|x) (see :class:`~scvae.module.GMVAEModule`). Off by default: with the components
        placed by k-means and q(y|x) fitted to them, the exact per-cell term clustered planted
        types better (see the ablation in the benchmarks).
    component_spread
        Standard deviation of the initial component means.

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
        n_clusters: int = 10,
        n_latent: int = 10,
        n_hidden: int | Sequence[int] = 128,
        n_layers: int = 1,
        likelihood: Likelihood = "nb",
        dispersion: Dispersion = "gene",
        scale_by_library: bool = True,
        piecewise_cutoff: int | None = None,
        prior: str = "uniform",
        use_batch_norm: bool = True,
        dropout_rate: float = 0.1,
        encode_batch: bool | None = None,
        marginal_cluster_kl: bool = False,
        component_spread: float = 1.0,
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
        if prior not in ("uniform", "learned"):
            raise ValueError(f"prior={prior!r} is not one of ('uniform', 'learned').")
        super().__init__(adata)
        self._require_integer_counts(piecewise_cutoff)
        if encode_batch is None:
            encode_batch = self.summary_stats.n_batch > 1
        # Kept to build fresh modules for the restarts of train(n_restarts=...).
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
            marginal_cluster_kl=marginal_cluster_kl,
            component_spread=component_spread,
        )
        self.module = GMVAEModule(**self._module_kwargs)
        self.restart_elbos_: np.ndarray | None = None
        self.restart_agreements_: np.ndarray | None = None
        self._model_summary_string = (
            f"scvae GMVAE: {n_clusters} clusters ({prior} prior), {likelihood} likelihood, "
            f"{n_latent} latent, hidden {widths}"
        )
        self.init_params_ = self._get_init_params(locals())

    def train(
        self,
        max_epochs: int | None = None,
        n_restarts: int = 1,
        restart_selection: str = "agreement",
        component_init_epochs: int | Sequence[int] | None = None,
        component_init_method: str = "kmeans",
        plan_kwargs: dict | None = None,
        annotate: bool = True,
        **kwargs,
    ) -> None:
        """Train the model; see :meth:`scvae.model.ScvaeModel.train` for all options.

        Parameters
        ----------
        max_epochs
            Number of epochs (scvi-tools' heuristic by default).
        n_restarts
            Train this many times (the first from the current weights, the others from fresh
            random ones) and keep one fit, chosen without labels by ``restart_selection``, as
            k-means keeps the best of its ``n_init`` starts. The clustering of a single fit
            can depend on the seed (see the clustering benchmark). Each restart costs one full
            training; every restart's ELBO and agreement are left in :attr:`restart_elbos_` and
            :attr:`restart_agreements_`. If a restart fails, the model keeps the fit chosen
            among the finished ones and the error is raised (nothing is annotated).
        restart_selection
            ``"agreement"`` (default): keep the fit whose clusters agree most with the other
            fits' (highest mean adjusted Rand index on the training cells; ties, as with two
            restarts, go to the higher ELBO), the most typical clustering. ``"elbo"``: keep the
            fit with the highest ELBO on the training cells, the best model of the data, which
            on real data did not pick the better clusterings (see the ten-seed clustering
            benchmark).
        component_init_epochs
            After each of these numbers of epochs, the mixture components are placed on
            clusters of the latent means (:class:`~scvae.train.ComponentInitialization`);
            ``0`` or ``()`` keeps the random initialisation. Default: half-way through training
            and again after 90% of the epochs, so that no component is left empty at the end
            (see the clustering benchmark).
        component_init_method
            ``"kmeans"`` (default) or ``"gaussian_mixture"``: how the latent means are
            clustered at each placement.
        plan_kwargs
            Passed to :class:`scvi.train.TrainingPlan`. Unless it sets ``n_epochs_kl_warmup``
            or ``n_steps_kl_warmup``, the KL warm-up lasts the first 30% of the epochs (not
            scvi-tools' 400): k-means then sees a latent space that has been under the full
            KL pressure for a while, which removes what the decoder can explain from the batch
            (see the ablation and the batch-effect benchmark in the documentation).
        annotate
            When training ends, write the results into the registered AnnData
            (:meth:`annotate`); with restarts, those of the kept fit.
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
            max_epochs = get_max_epochs_heuristic(self.adata.n_obs)
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
            plan_kwargs["n_epochs_kl_warmup"] = max(1, (3 * max_epochs) // 10)
        if initialization.epochs:
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), initialization]
        if n_restarts == 1:
            super().train(
                max_epochs=max_epochs, plan_kwargs=plan_kwargs, annotate=annotate, **kwargs
            )
            return
        fits, elbos, clusters = [], [], []
        try:
            for restart in range(int(n_restarts)):
                if restart:  # new weights from the global random state, which the user seeded
                    self.module = GMVAEModule(**self._module_kwargs)
                    # A fresh history: scvi-tools would append to the previous fit's in place.
                    self.history_, self.is_trained_ = None, False
                super().train(
                    max_epochs=max_epochs, plan_kwargs=plan_kwargs, annotate=False, **kwargs
                )
                elbo, partition = self._training_elbo(), self.predict(indices=self.train_indices)
                fits.append((self.module, self.history_))
                elbos.append(elbo)
                clusters.append(partition)
        finally:  # also when a restart fails: keep the chosen one of the finished fits
            if fits:
                self.restart_elbos_ = np.array(elbos)
                self.restart_agreements_ = mean_agreements(clusters)
                kept = select_restart(
                    self.restart_elbos_, self.restart_agreements_, restart_selection
                )
                (self.module, self.history_), self.is_trained_ = fits[kept], True
        if annotate:
            self.annotate()

    def _training_elbo(self) -> float:
        """ELBO per cell on the training cells, from the same draws of z for every fit."""
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return self.get_elbo(indices=self.train_indices)

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
            z_mean, qy = self.module.posterior_summary(tensors)
            latents.append(z_mean.cpu())
            probabilities.append(qy.cpu())
        return torch.cat(latents).numpy(), torch.cat(probabilities).numpy()

    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Posterior mean of z, :math:`\\sum_k q(k \\mid x) E[z \\mid x, k]` (cells x latent).

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

    def annotate(self, adata: AnnData | None = None, batch_size: int | None = None) -> None:
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
        """
        adata = self._validate_anndata(adata)
        latent, probabilities = self._posterior(adata, None, batch_size)
        clusters = pd.Categorical(
            np.asarray(self._cluster_names())[probabilities.argmax(1)],
            categories=self._cluster_names(),
        ).remove_unused_categories()
        adata.obsm[LATENT_KEY] = latent
        adata.obsm[CLUSTER_PROBABILITIES_KEY] = probabilities
        adata.obs[CLUSTER_KEY] = pd.Categorical(clusters)
        adata.obs[CLUSTER_CONFIDENCE_KEY] = probabilities.max(1)

    @torch.inference_mode()
    def get_cluster_profiles(self, transform_batch: int = 0) -> pd.DataFrame:
        """Expected normalised expression at each component's mean (K x genes).

        Decodes the mean :math:`\\mu_k` of each p(z | y=k); rows sum to one.

        Parameters
        ----------
        transform_batch
            Batch code to decode as, when a batch was registered.
        """
        self._check_if_trained(warn=False)
        self.module.eval()
        means = self.module.prior_means.detach()
        library = torch.ones(self.n_clusters, 1, device=means.device)
        batch = torch.full((self.n_clusters,), transform_batch, device=means.device)
        px = self.module.decoder(means, library, batch)
        profile = px.get_normalized("scale")
        profile = profile / profile.sum(-1, keepdim=True)
        return pd.DataFrame(
            profile.cpu().numpy(), index=self._cluster_names(), columns=self.adata.var_names
        )

    @torch.inference_mode()
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
        module = self.module.eval()
        device = module.prior_means.device
        if cluster is None:
            prior_y = torch.distributions.Categorical(logits=module.prior_logits)
            y = prior_y.sample((n,)).to(device)
        else:
            y = torch.full((n,), cluster, device=device)
        pz = module.prior_z()
        z = pz.loc[y, 0] + pz.scale[y, 0] * torch.randn(n, module.n_latent, device=device)
        if library_size is None:
            totals = self._registered_library_sizes()
            library = generator.choice(totals, size=n)
        else:
            library = np.full(n, library_size)
        library = torch.as_tensor(library, dtype=z.dtype, device=device)[:, None]
        batch = torch.full((n,), transform_batch, device=device)
        return module.decoder(z, library, batch).sample().cpu().numpy()

    def _registered_library_sizes(self) -> np.ndarray:
        counts = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        return np.asarray(counts.sum(axis=1)).ravel()
