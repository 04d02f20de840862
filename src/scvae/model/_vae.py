"""User-facing VAE: a Gaussian-prior variational autoencoder of raw counts."""

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
from anndata import AnnData

from scvae._random import random_state_kept
from scvae.module import VAEModule

from ._base import ScvaeModel
from ._option_checks import check_architecture


class VAE(ScvaeModel):
    """Variational autoencoder of raw UMI counts (scVAE's VAE, on scvi-tools).

    Parameters
    ----------
    adata
        AnnData registered with :func:`scvae.setup_anndata`.
    n_latent
        Dimension of the latent space.
    n_hidden
        Width of each hidden layer, or the list of widths (scVAE style, e.g.
        ``[1000, 500, 250, 100]``). The decoder mirrors the encoder.
    n_layers
        Number of hidden layers when ``n_hidden`` is one width.
    likelihood
        ``"poisson"``, ``"nb"`` (negative binomial), ``"zip"`` (zero-inflated Poisson),
        ``"zinb"`` (zero-inflated NB) or ``"constrained_poisson"`` (scVAE's: rates are a softmax
        over genes times the cell's total count; the same model as ``"poisson"`` with
        ``scale_by_library=True``, kept under scVAE's name), or any other name in
        :data:`scvae.distributions.LIKELIHOODS`.
    dispersion
        Inverse dispersion of NB/ZINB per ``"gene"``, per ``"gene-batch"`` or per ``"gene-cell"``.
    scale_by_library
        Scale the decoder's means by the cell's observed total count (default); ``False`` leaves
        them free (scVAE's unconstrained form).
    piecewise_cutoff
        Use scVAE's piecewise categorical variant: counts below this cutoff come from a
        categorical distribution, larger ones from the likelihood shifted by the cutoff.
        Available for ``"poisson"``, ``"nb"`` and ``"constrained_poisson"``.
    use_batch_norm
        Which networks batch-normalise their hidden layers: ``"encoder"`` (default),
        ``"decoder"``, ``"both"`` (scvi-tools' choice) or ``"none"``; ``True`` and ``False``
        mean ``"both"`` and ``"none"``. The decoder is the generative model p(x | z), so by
        default it is left without batch statistics, which would make a cell's likelihood
        depend on the other cells of its minibatch.
    dropout_rate
        Dropout on the encoder's hidden layers.
    encode_batch
        Also condition the encoder on the registered batch (the decoder always is).

    Examples
    --------
    >>> scvae.setup_anndata(adata, layer="counts")
    >>> model = scvae.VAE(adata, likelihood="nb")
    >>> model.train()
    >>> sc.pp.neighbors(adata, use_rep="X_scvae")
    """

    _module_cls = VAEModule

    def __init__(
        self,
        adata: AnnData | None = None,
        *,
        n_latent: int = 10,
        n_hidden: int | Sequence[int] = 128,
        n_layers: int = 1,
        likelihood: str = "nb",
        dispersion: str = "gene",
        scale_by_library: bool = True,
        piecewise_cutoff: int | None = None,
        use_batch_norm: bool | str = "encoder",
        dropout_rate: float = 0.1,
        encode_batch: bool = False,
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
        super().__init__(adata)
        self._require_integer_counts(piecewise_cutoff)
        self.module = VAEModule(
            n_input=self.summary_stats.n_vars,
            n_batch=self.summary_stats.n_batch,
            n_latent=n_latent,
            n_hidden=widths,
            likelihood=likelihood,
            dispersion=dispersion,
            scale_by_library=scale_by_library,
            piecewise_cutoff=piecewise_cutoff,
            use_batch_norm=use_batch_norm,
            dropout_rate=dropout_rate,
            encode_batch=encode_batch,
        )
        self._model_summary_string = (
            f"scvae VAE: {likelihood} likelihood, {n_latent} latent, hidden {widths}, "
            f"dispersion {dispersion}, library-scaled means: {scale_by_library}"
        )
        self.init_params_ = self._get_init_params(locals())

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
        """Posterior mean of z (cells x latent), or with ``return_dist`` its mean and variance.

        scvi-tools' :meth:`~scvi.model.base.VAEMixin.get_latent_representation` (same
        arguments), reading sparse counts as sparse minibatches unless a ``dataloader`` is
        given, so that a pass over millions of cells does not densify each minibatch.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the one the model was set up with.
        indices
            Cells to use, as positions or a boolean mask; all by default.
        give_mean
            The posterior mean; ``False``: one draw of z per cell from q(z | x).
        mc_samples
            Not used: the posterior mean is exact (kept for scvi-tools' signature).
        batch_size
            Cells per forward pass.
        return_dist
            Return the posterior mean and variance of z.
        dataloader
            Minibatches to read instead of ``adata`` (then ``adata`` must be ``None``).
        **data_loader_kwargs
            scvi-tools' loader options; those that only tune fetching (``num_workers``)
            are taken and ignored, others refused (:class:`~scvae.data.TensorDataLoader`).

        Returns
        -------
        ``(cells, n_latent)``, or with ``return_dist`` the means and the variances.
        """
        # A fixed answer (its pass draws z, the loader a seed) leaves the session's state.
        keep = random_state_kept(self.device) if give_mean or return_dist else nullcontext()
        with keep:
            return super().get_latent_representation(
                give_mean=give_mean,
                mc_samples=mc_samples,
                return_dist=return_dist,
                dataloader=self._query_minibatches(
                    adata, indices, batch_size, dataloader, **data_loader_kwargs
                ),
            )
