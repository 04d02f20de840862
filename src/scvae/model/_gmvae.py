"""User-facing GMVAE: clusters cells while it models their raw counts."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from anndata import AnnData
from scvi import settings

from scvae._result_keys import DEFAULT_KEY
from scvae.module import ComponentGMVAEModule, GMVAEModule

from ._base import ScvaeModel
from ._cluster_generation import ClusterGenerationMixin
from ._cluster_queries import ClusterQueriesMixin
from ._cluster_selection import (
    CELLS_PER_COMPONENT,
    ClusterSelection,
    cells_to_evaluate,
    select_clusters,
)
from ._failed_fit import earlier_fit_kept_on_failure
from ._gmvae_training import checked_schedule, fit_gmvae
from ._option_checks import (
    check_architecture,
    check_mixture_options,
    check_n_clusters,
)

#: The GMVAE's inference models (see :class:`GMVAE`).
INFERENCES = ("responsibilities", "classifier", "per_component")
#: What a model saved before ``inference`` existed was built as.
SAVED_WITHOUT_INFERENCE = {"inference": "per_component"}


class GMVAE(ClusterQueriesMixin, ClusterGenerationMixin, ScvaeModel):
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
        Number of mixture components K, each a cluster; or ``"auto"``: ``max_clusters``
        components, merged into the clusters the counts tell apart
        (:class:`~scvae.model.ClusterSelection`, :meth:`select_clusters`).
    max_clusters
        Components of an ``"auto"`` fit. A resolution more than an upper bound: more
        components leave more clusters that the counts tell apart (``docs/gmvae.md``).
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
        ``"learned"`` mixture weights p(y) (default: each placement sets them to its
        clusters' shares, and training goes on from there), so that cell types of unequal
        abundance are not pulled towards equal shares; or ``"uniform"`` ones.
    use_batch_norm
        Which networks batch-normalise their hidden layers: ``"encoder"`` (default),
        ``"decoder"``, ``"both"`` (scvi-tools' choice) or ``"none"``; ``True`` and ``False``
        mean ``"both"`` and ``"none"``. The decoder is the generative model p(x | z), so by
        default it is left without batch statistics, which would make a cell's likelihood
        depend on the other cells of its minibatch.
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
    cluster_selection_
        After training, the merges of the components into clusters and the cut chosen
        (:class:`~scvae.model.ClusterSelection`; :meth:`select_clusters` re-cuts it).
    key_added_
        Where the clusters were last written into the registered AnnData (``key_added`` of
        :meth:`train` or :meth:`select_clusters`); :meth:`select_clusters` writes there too.
    cluster_sizes_
        After training, the training AnnData's cells in each cluster (as in its ``obs``).
    n_clusters_used_
        After training, the clusters in use: with 1% of an even share of the cells, 3 at least.
    component_sizes_
        After training, the number of training cells in each component.
    component_clusters_
        With ``n_clusters="auto"``, the cluster of each component; ``None`` with a fixed K.
    schedule_
        The epochs of the last fit's warm-up and placements (:class:`~scvae.model.GMVAESchedule`).

    Examples
    --------
    >>> scvae.setup_anndata(adata, layer="counts")
    >>> model = scvae.GMVAE(adata, n_clusters=10, likelihood="nb")
    >>> model.train()
    >>> sc.pp.neighbors(adata, use_rep="X_scvae")
    >>> sc.tl.umap(adata)
    >>> sc.pl.umap(adata, color="scvae_cluster")
    """

    _module_cls = GMVAEModule
    _saved_defaults = SAVED_WITHOUT_INFERENCE

    def __init__(
        self,
        adata: AnnData | None = None,
        *,
        n_clusters: int | str = 10,
        max_clusters: int = 30,
        inference: str = "responsibilities",
        n_latent: int = 10,
        n_hidden: int | Sequence[int] = 128,
        n_layers: int = 1,
        likelihood: str = "nb",
        dispersion: str = "gene",
        scale_by_library: bool = True,
        piecewise_cutoff: int | None = None,
        prior: str = "learned",
        use_batch_norm: bool | str = "encoder",
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
            use_batch_norm,
            encode_batch,
        )
        check_n_clusters(n_clusters, max_clusters)
        check_mixture_options(inference, INFERENCES, prior, marginal_cluster_kl, component_spread)
        auto = n_clusters == "auto"
        super().__init__(adata)
        self._require_integer_counts(piecewise_cutoff)
        if encode_batch is None:
            encode_batch = self.summary_stats.n_batch > 1
        if component_spread is None:
            component_spread = 1.0 if inference == "per_component" else 0.0
        self._module_kwargs = dict(
            n_input=self.summary_stats.n_vars,
            n_components=int(max_clusters if auto else n_clusters),
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
        self.auto_clusters = auto
        self.module = self._build_module()
        self.key_added_ = DEFAULT_KEY
        self._forget_fit()
        self._model_summary_string = (
            f"scvae GMVAE: {n_clusters} clusters ({prior} prior, {inference} inference), "
            f"{likelihood} likelihood, {n_latent} latent, hidden {widths}"
        )
        self.init_params_ = self._get_init_params(locals())

    def _forget_fit(self) -> None:
        """Clear the results of a fit (clusters, their selection and sizes, restarts)."""
        self.cluster_selection_: ClusterSelection | None = None
        self.component_sizes_: np.ndarray | None = None
        self.component_clusters_: np.ndarray | None = None
        self.cluster_sizes_: np.ndarray | None = None
        self.n_clusters_used_: int | None = None
        self.restart_elbos_: np.ndarray | None = None
        self.restart_agreements_: np.ndarray | None = None

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
        warmup_epochs: int | None = None,
        component_init_epochs: int | Sequence[int] | None = None,
        component_init_method: str = "kmeans",
        stop_when_converged: bool = True,
        plan_kwargs: dict | None = None,
        annotate: bool = True,
        key_added: str = DEFAULT_KEY,
        **kwargs: Any,
    ) -> None:
        """Train the model; see :meth:`scvae.model.ScvaeModel.train` for all options.

        A fit is a VAE phase, then a mixture phase (see :class:`~scvae.model.GMVAESchedule`):
        the KL weight warms up while the components wait at the origin, k-means on the
        latent means places them (:class:`~scvae.train.ComponentInitialization`), and the
        mixture trains until its clustering and validation ELBO have settled
        (:class:`~scvae.train.ClusterConvergence`) or ``max_epochs`` is reached.

        Parameters
        ----------
        max_epochs
            Epochs at most; by default scvi-tools' number for the data size (400 epochs up
            to 20,000 cells), or more when the default placement comes late.
        n_restarts
            Train this many times on the first fit's cells (the first from the current
            weights, the others from fresh random ones) and keep one fit, chosen without labels
            by ``restart_selection``. Each restart costs one full training; their ELBOs and
            agreements are in :attr:`restart_elbos_` and :attr:`restart_agreements_`. If a
            restart fails, the error is raised and nothing is annotated; the model keeps its
            earlier fit or, never trained before, the fit chosen among the finished ones. The
            ``callbacks`` given take part in the first fit; every other restart gets its own
            copy of them as they were given.
        restart_selection
            ``"agreement"`` (default): keep the fit whose clusters agree most with the other
            fits' (highest mean adjusted Rand index on the training cells; ties go to the
            higher ELBO), the most typical clustering. ``"elbo"``: keep the fit with the
            highest ELBO on the training cells.
        warmup_epochs
            Epochs over which the KL weight rises from 0 to 1 (at most ``max_epochs``); by
            default those of :class:`~scvae.model.GMVAESchedule`'s warm-up steps. A warm-up
            in ``plan_kwargs`` (``n_epochs_kl_warmup`` or ``n_steps_kl_warmup``) is taken
            as this one; giving both is refused.
        component_init_epochs
            After each of these epochs (counted from 1) the components are placed; ``0`` or
            ``()`` keeps the current placement (refused where all components still sit at
            one point, as a new model's do by default, and with ``n_restarts > 1``, whose
            restarts start from new ones). By default twice: a few epochs after the
            warm-up, and again on the latent space the mixture has shaped (see
            :class:`~scvae.model.GMVAESchedule`). Training that ends before the last
            placement (a Lightning ``EarlyStopping`` among the ``callbacks``) is warned of.
        component_init_method
            ``"kmeans"`` (default) or ``"gaussian_mixture"``: how the latent means are
            clustered at each placement.
        stop_when_converged
            Stop once the clustering and the ELBO have settled after the last placement.
        plan_kwargs
            Passed to :class:`~scvae.train.ScvaeTrainingPlan`.
        annotate
            When training ends, write the results into the registered AnnData
            (:meth:`annotate`); with restarts, those of the kept fit.
        key_added
            Where :meth:`annotate` writes them.
        **kwargs
            As for :meth:`scvae.model.ScvaeModel.train`.
        """
        options = {**kwargs, "annotate": annotate, "stop_when_converged": stop_when_converged}
        options.update(n_restarts=n_restarts, restart_selection=restart_selection)
        schedule = checked_schedule(
            self, max_epochs, warmup_epochs, component_init_epochs, plan_kwargs, key_added, options
        )
        with earlier_fit_kept_on_failure(self):
            self._forget_fit()
            fit_gmvae(
                self,
                super().train,
                schedule,
                n_restarts=n_restarts,
                restart_selection=restart_selection,
                component_init_method=component_init_method,
                stop_when_converged=stop_when_converged,
                plan_kwargs=plan_kwargs,
                key_added=key_added,
                kwargs=kwargs,
            )
            # One pass over the cells serves the cluster selection and the annotation.
            posterior = self._posterior(None, None, None, components=True)
            self._merge_components(posterior[1][np.asarray(self.train_indices)].argmax(1))
            results = self._finish_clusters(posterior)
        if annotate:  # the AnnData is written only once all is computed
            self._annotate_registered(key_added, *results)

    def _merge_components(
        self, components: np.ndarray, cells_per_component: int = CELLS_PER_COMPONENT
    ) -> None:
        """Merge the components into clusters (:mod:`scvae.model._cluster_selection`), given
        the component (argmax q(y|x)) of each training cell, evaluated on up to
        ``cells_per_component`` cells of each; with ``n_clusters="auto"`` the merged groups
        become the model's clusters, with a fixed K the selection is cut at the K components."""
        sizes = np.bincount(components, minlength=self.module.n_components)
        self.component_sizes_ = sizes
        chosen = cells_to_evaluate(components, len(sizes), cells_per_component, settings.seed or 0)
        indices = np.asarray(self.train_indices)[chosen]
        loader = self._query_loader(self.adata, indices, batch_size=256)
        self.module.eval()
        log_likelihoods = np.concatenate(
            [self.module.component_log_likelihoods(t).double().cpu().numpy() for t in loader]
        )
        means = self.module.prior.means.detach().cpu().numpy()
        selection = select_clusters(log_likelihoods, components[chosen], sizes, means)
        if self.auto_clusters:
            self.component_clusters_ = selection.component_clusters
        else:  # the clusters are the components: the hierarchy cut where the model is
            selection = selection.cut(n_clusters=self.module.n_components)
        self.cluster_selection_ = selection

    def summary(self) -> dict[str, Any]:
        """:meth:`scvae.model.ScvaeModel.summary`, plus ``n_clusters``, ``n_components``,
        ``inference``, the clusters in use and, after restarts, each restart's ELBO and
        agreement."""
        summary = {
            **super().summary(),
            "n_clusters": self.n_clusters,
            "n_components": self.n_components,
            "inference": self.inference,
        }
        if self.n_clusters_used_ is not None:
            summary["n_clusters_used"] = self.n_clusters_used_
            summary["cluster_sizes"] = self.cluster_sizes_.tolist()
        if self.restart_elbos_ is not None:
            summary["restart_elbos"] = self.restart_elbos_.tolist()
            summary["restart_agreements"] = self.restart_agreements_.tolist()
        return summary

    @property
    def n_clusters(self) -> int:
        """Number of clusters: K, or with ``n_clusters="auto"`` the number chosen."""
        if self.component_clusters_ is None:
            return self.module.n_components
        return int(self.component_clusters_.max() + 1)

    @property
    def n_components(self) -> int:
        """Number of mixture components: K, or ``max_clusters`` with ``n_clusters="auto"``."""
        return self.module.n_components
