"""The queries of scvi-tools' mixins that read the likelihood: answered for scvae's
likelihoods (their values on the host), or refused with the reason where scvi-tools'
assumptions do not hold."""

import inspect
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass

from scvae._arguments import whole_number
from scvae._counts import library_size
from scvae.module import ComponentGMVAEModule

#: Why scvi-tools' importance weights do not apply to scvae's models.
NO_IMPORTANCE_WEIGHTS = (
    "Importance weights (weights='importance') are not available for scvae's models: "
    "scvi-tools computes them for scVI's standard normal prior and its parameters. Use "
    "weights='uniform' (the default)."
)


class LikelihoodQueriesMixin:
    """scvi-tools' queries of the likelihood for scvae's models (a mixin of
    :class:`~scvae.model.ScvaeModel`, which provides ``_validate_anndata`` and
    ``_query_minibatches``): the ELBO and reconstruction error moved off the device, the
    likelihood's parameters and library size of scvae's likelihoods, and refusals where
    scvi-tools assumes scVI's."""

    def get_elbo(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        dataloader: Iterable[dict] | None = None,
        return_mean: bool = True,
        data_loader_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> float | np.ndarray:
        """Evidence lower bound per cell (higher is better), on the CPU whatever the device.

        scvi-tools' :meth:`~scvi.model.base.VAEMixin.get_elbo` (same arguments), whose result
        stays on the device the model is on; on a GPU that is a CUDA tensor, which numpy
        cannot read.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the one the model was set up with.
        indices
            Cells to use, as positions or a boolean mask; all by default.
        batch_size
            Cells per forward pass.
        return_mean
            Return the mean over the cells; ``False``: one value per cell.
        dataloader, data_loader_kwargs
            As in scvi-tools: minibatches to read instead of ``adata``; loader options.
        **kwargs
            Passed to scvi-tools' method.

        Returns
        -------
        The mean ELBO over the cells as a float, or with ``return_mean=False`` one value per
        cell.
        """
        elbo = super().get_elbo(
            adata=adata,
            indices=indices,
            batch_size=batch_size,
            return_mean=return_mean,
            **_given(dataloader=dataloader, data_loader_kwargs=data_loader_kwargs),
            **kwargs,
        )
        return _on_host(elbo, return_mean)

    def get_marginal_ll(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        n_mc_samples: int = 1000,
        batch_size: int | None = None,
        return_mean: bool = True,
        dataloader: Iterable[dict] | None = None,
        data_loader_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> float | np.ndarray:
        """Importance-weighted estimate of each cell's log-likelihood :math:`\\log p(x)`, on
        the CPU (higher is better; see :doc:`/gmvae` for the estimator).

        scvi-tools' :meth:`~scvi.model.base.VAEMixin.get_marginal_ll` (same arguments),
        except that the mean is taken over cells: scvi-tools averages the means of the
        minibatches, which weighs the cells of a short last minibatch more and makes the
        result depend on ``batch_size``.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the one the model was set up with.
        indices
            Cells to use, as positions or a boolean mask; all by default.
        n_mc_samples
            Importance samples per cell.
        batch_size
            Cells per forward pass.
        return_mean
            Return the mean over the cells; ``False``: one value per cell.
        dataloader, data_loader_kwargs
            As in scvi-tools: minibatches to read instead of ``adata``; loader options.
        **kwargs
            Passed to scvi-tools' method.

        Returns
        -------
        The mean over the cells as a float, or with ``return_mean=False`` one value per cell.
        """
        per_cell = super().get_marginal_ll(
            adata=adata,
            indices=indices,
            n_mc_samples=n_mc_samples,
            batch_size=batch_size,
            return_mean=False,  # the mean over cells is taken below
            **_given(dataloader=dataloader, data_loader_kwargs=data_loader_kwargs),
            **kwargs,
        )
        per_cell = _on_host(per_cell, return_mean=False)
        return float(per_cell.mean()) if return_mean else per_cell

    def get_reconstruction_error(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        dataloader: Iterable[dict] | None = None,
        return_mean: bool = True,
        data_loader_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> dict[str, float | np.ndarray]:
        """Reconstruction error (negative log-likelihood of the counts) per cell, on the CPU.

        scvi-tools' :meth:`~scvi.model.base.VAEMixin.get_reconstruction_error` (same
        arguments), with its values moved off the model's device.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the one the model was set up with.
        indices
            Cells to use, as positions or a boolean mask; all by default.
        batch_size
            Cells per forward pass.
        return_mean
            Return the means over the cells; ``False``: one value per cell.
        dataloader, data_loader_kwargs
            As in scvi-tools: minibatches to read instead of ``adata``; loader options.
        **kwargs
            Passed to scvi-tools' method.

        Returns
        -------
        ``{"reconstruction_loss": ...}``: the mean over the cells as a float, or with
        ``return_mean=False`` one value per cell.
        """
        errors = super().get_reconstruction_error(
            adata=adata,
            indices=indices,
            batch_size=batch_size,
            return_mean=return_mean,
            **_given(dataloader=dataloader, data_loader_kwargs=data_loader_kwargs),
            **kwargs,
        )
        return {key: _on_host(value, return_mean) for key, value in errors.items()}

    def get_normalized_expression(self, *args: Any, **kwargs: Any) -> np.ndarray | pd.DataFrame:
        """scvi-tools' :meth:`~scvi.model.base.RNASeqMixin.get_normalized_expression` (same
        arguments), except ``weights="importance"``, which is refused before any work.

        With ``n_samples_overall`` the rows are that many draws from the cells' posteriors,
        not cells: a :class:`~pandas.DataFrame` of them has the genes as columns and the
        draws numbered (scvi-tools 1.4 fails there, indexing the draws by the cells).

        Parameters
        ----------
        *args, **kwargs
            The arguments of scvi-tools' method (``adata``, ``indices``, ``n_samples``,
            ``library_size``, ``return_mean``, ...).

        Raises
        ------
        NotImplementedError
            ``weights="importance"``.
        """
        bound = inspect.signature(super().get_normalized_expression).bind(*args, **kwargs)
        options = bound.arguments
        if options.get("weights") == "importance":
            raise NotImplementedError(NO_IMPORTANCE_WEIGHTS)
        if options.get("n_samples_overall") is None or options.get("return_numpy"):
            return super().get_normalized_expression(*args, **kwargs)
        draws = super().get_normalized_expression(**{**options, "return_numpy": True})
        if options.get("dataloader") is not None:
            return draws  # scvi-tools returns arrays for a dataloader's cells
        genes = self._validate_anndata(options.get("adata")).var_names
        if options.get("gene_list") is not None:
            genes = genes[genes.isin(options["gene_list"])]
        return pd.DataFrame(draws, columns=genes)

    def get_importance_weights(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available for scvae's models (see :data:`NO_IMPORTANCE_WEIGHTS`).

        Parameters
        ----------
        *args, **kwargs
            The arguments of scvi-tools' method, refused whatever they are.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(NO_IMPORTANCE_WEIGHTS)

    def get_feature_correlation_matrix(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """scvi-tools' :meth:`~scvi.model.base.RNASeqMixin.get_feature_correlation_matrix`
        (same arguments): gene-gene correlations of expression drawn from the gamma part of
        the negative binomial, so for models with an NB or ZINB likelihood and one decoder pass
        per cell.

        Parameters
        ----------
        *args, **kwargs
            The arguments of scvi-tools' method (``adata``, ``n_samples``,
            ``correlation_type``, ...).

        Raises
        ------
        NotImplementedError
            The likelihood has no dispersion (Poisson, ZIP, constrained Poisson), is
            piecewise categorical, or the GMVAE decodes a mixture per cell
            (``inference="per_component"``).
        """
        reason = self._no_gamma_expression()
        if reason is not None:
            raise NotImplementedError(
                f"get_feature_correlation_matrix draws scvi-tools' gamma-distributed expression, "
                f"which needs a negative binomial likelihood decoded once per cell, but "
                f"{reason}. Correlate the genes of model.get_normalized_expression(n_samples=...) "
                "instead (e.g. with pandas' DataFrame.corr)."
            )
        return super().get_feature_correlation_matrix(*args, **kwargs)

    def _no_gamma_expression(self) -> str | None:
        """Why the decoded likelihood has no gamma part (an NB's :math:`\\theta`), or ``None``."""
        decoder = self.module.decoder
        if isinstance(self.module, ComponentGMVAEModule):
            return "this GMVAE decodes a mixture over its components (inference='per_component')"
        if decoder.piecewise_cutoff is not None:
            return "this model's likelihood is piecewise categorical"
        if "dispersion" not in decoder.likelihood.parameters.values():
            return f"this model's likelihood is {decoder.likelihood.name!r}"
        return None

    def get_likelihood_parameters(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        n_samples: int = 1,
        give_mean: bool = False,
        batch_size: int | None = None,
        dataloader: Iterable[dict] | None = None,
    ) -> dict[str, np.ndarray]:
        """The parameters of the count likelihood p(x | z) of each cell, z drawn from q(z | x).

        Replaces scvi-tools' method of the same name (which reads scVI's likelihoods only);
        the keys follow its names where the parameter is the same.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the one the model was set up with.
        indices
            Cells to use, as positions or a boolean mask; all by default.
        n_samples
            Draws of z per cell.
        give_mean
            Average over the draws (when ``n_samples > 1``).
        batch_size
            Cells per forward pass.
        dataloader
            Minibatches to read instead of ``adata`` (then ``adata`` must be ``None``).

        Returns
        -------
        ``{"mean": ...}`` (the rate of a Poisson, :math:`\\mu` of a negative binomial and of
        their zero-inflated forms), ``"dispersions"`` (:math:`\\theta`, NB and ZINB),
        ``"dropout"`` (the zero-inflation probability, ZIP and ZINB), and for the other
        likelihoods the parameters of
        :meth:`~scvae.distributions.CountDistribution.likelihood_parameters`. Arrays are
        ``(cells, genes)``, with a leading axis of ``n_samples`` draws unless ``give_mean`` or
        ``n_samples=1``. A GMVAE with ``inference="per_component"`` decodes a mixture over
        the components (one z each), which has no single dispersion: ``"mean"`` is the
        mixture's mean, ``"component_weights"`` its weights q(y|x) ``(cells, K)``, and each
        component's parameters come prefixed ``"component_"`` (``"component_dispersions"``,
        ...) with the component axis before the cells.
        """
        if whole_number(n_samples, 1) is None:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        loader = self._query_minibatches(adata, indices, batch_size, dataloader)
        self.module.eval()
        return likelihood_parameters(self.module, loader, int(n_samples), give_mean)

    def get_latent_library_size(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        give_mean: bool = True,
        batch_size: int | None = None,
        dataloader: Iterable[dict] | None = None,
    ) -> np.ndarray:
        """The library size the decoder scales each cell's means by: its observed total count.

        scvae does not infer a library size (scVI's optional latent :math:`\\ell`), so
        ``give_mean`` changes nothing; the argument is kept for scvi-tools' signature.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the one the model was set up with.
        indices
            Cells to use, as positions or a boolean mask; all by default.
        give_mean
            Ignored (the library size is observed, not a posterior).
        batch_size
            Cells per pass.
        dataloader
            Minibatches to read instead of ``adata`` (then ``adata`` must be ``None``).

        Returns
        -------
        ``(cells, 1)`` total counts.

        Raises
        ------
        ValueError
            The model was built with ``scale_by_library=False``: its decoder uses no library
            size.
        """
        if not self.module.decoder.scale_by_library:
            raise ValueError(
                "This model was built with scale_by_library=False: its decoder does not use a "
                "library size. The cells' total counts are adata.X.sum(axis=1)."
            )
        loader = self._query_minibatches(adata, indices, batch_size, dataloader)
        return observed_library_sizes(loader)


@torch.inference_mode()
def likelihood_parameters(
    module: BaseModuleClass, loader: Iterable[dict], n_samples: int, give_mean: bool
) -> dict[str, np.ndarray]:
    """The decoded likelihood's parameters (:meth:`~scvae.distributions.CountDistribution.
    likelihood_parameters`) of every cell ``loader`` serves, for ``n_samples`` draws of z.

    Each parameter has the cells on axis -2; with ``n_samples > 1`` a leading axis holds the
    draws, averaged away by ``give_mean``.
    """
    chunks: dict[str, list[np.ndarray]] = {}
    for tensors in loader:
        _, generative_outputs = module.forward(
            tensors, inference_kwargs={"n_samples": n_samples}, compute_loss=False
        )
        for name, value in generative_outputs["px"].likelihood_parameters().items():
            chunks.setdefault(name, []).append(value.cpu().numpy())
    parameters = {name: np.concatenate(parts, axis=-2) for name, parts in chunks.items()}
    if give_mean and n_samples > 1:
        parameters = {name: value.mean(0) for name, value in parameters.items()}
    return parameters


def observed_library_sizes(loader: Iterable[dict]) -> np.ndarray:
    """Total count of every cell ``loader`` serves, ``(cells, 1)``."""
    sizes = [library_size(tensors[REGISTRY_KEYS.X_KEY]).cpu() for tensors in loader]
    return torch.cat(sizes).numpy()


def _on_host(value, return_mean: bool) -> float | np.ndarray:
    """A metric from scvi-tools (a tensor on the model's device) as a float or numpy array."""
    value = torch.as_tensor(value).detach().cpu()
    return float(value) if return_mean else value.numpy()


def _given(**options: Any) -> dict[str, Any]:
    """The ``options`` that are not ``None``: scvi-tools 1.3 takes no ``data_loader_kwargs``
    in its likelihood queries, so an option left out is not passed on."""
    return {name: value for name, value in options.items() if value is not None}
