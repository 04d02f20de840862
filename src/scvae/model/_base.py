"""What every scvae model shares: registration, training and writing results into AnnData."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField
from scvi.model.base import BaseModelClass, RNASeqMixin, UnsupervisedTrainingMixin, VAEMixin

from scvae._constants import (
    DISPERSIONS,
    LATENT_KEY,
    LIKELIHOODS,
    PIECEWISE_LIKELIHOODS,
)
from scvae.data._loader import TensorDataLoader, TensorDataSplitter
from scvae.data._validation import validate_counts
from scvae.module._networks import hidden_widths
from scvae.train import NonFiniteLossGuard, ScvaeTrainingPlan


class ScvaeModel(RNASeqMixin, VAEMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """Base class of the scvae models (:class:`~scvae.VAE`, :class:`~scvae.GMVAE`).

    Registration, save/load, the training loop (KL warm-up, early stopping, accelerators) and
    the generic posterior queries come from scvi-tools' mixins; this class adds input
    validation, a faster data path (:class:`~scvae.data.TensorDataLoader`) and writes results
    where scanpy expects them.
    """

    _data_loader_cls = TensorDataLoader
    _data_splitter_cls = TensorDataSplitter
    _training_plan_cls = ScvaeTrainingPlan

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        batch_key: str | None = None,
        labels_key: str | None = None,
        **kwargs,
    ) -> None:
        """Register the raw counts (and optional batch and label columns) for this model class.

        Prefer :func:`scvae.setup_anndata`, which registers ``adata`` for every scvae model at
        once and validates it first.

        Parameters
        ----------
        adata
            AnnData with raw counts.
        layer
            Layer holding the raw counts; ``None`` uses ``adata.X``.
        batch_key
            ``adata.obs`` column with the batch of each cell.
        labels_key
            ``adata.obs`` column with known cell labels (never used in training).
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=True),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
            CategoricalObsField(REGISTRY_KEYS.LABELS_KEY, labels_key),
        ]
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    def train(
        self,
        max_epochs: int | None = None,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        train_size: float | None = None,
        validation_size: float | None = None,
        batch_size: int = 128,
        early_stopping: bool = False,
        plan_kwargs: dict | None = None,
        annotate: bool = True,
        load_sparse_tensor: bool | None = None,
        **kwargs,
    ) -> None:
        """Train the model with scvi-tools' training plan and Lightning trainer.

        Parameters
        ----------
        max_epochs
            Number of passes through the training cells; by default scvi-tools' heuristic
            (400 epochs for up to 20,000 cells, fewer for larger data).
        accelerator
            ``"auto"`` uses a GPU when there is one, else the CPU.
        devices
            Devices to train on, e.g. ``2`` for two GPUs (with ``strategy="ddp"``).
        train_size
            Fraction of cells for training; the rest is the validation set (default 0.9).
        validation_size
            Fraction of cells for validation; defaults to ``1 - train_size``.
        batch_size
            Cells per minibatch.
        early_stopping
            Stop when the validation ELBO stops improving (see ``early_stopping_patience``).
        plan_kwargs
            Passed to :class:`scvi.train.TrainingPlan`, e.g. ``{"lr": 1e-3,
            "n_epochs_kl_warmup": 400}``.
        annotate
            When training ends, write the results into the registered AnnData (see
            :meth:`annotate`). Nothing is written if training fails.
        load_sparse_tensor
            Serve minibatches as torch sparse CSR tensors, of which the encoders and the
            negative binomial read only the non-zero counts. By default they are sparse when
            the counts are (at most 30% non-zero, or a backed file), dense otherwise.
        **kwargs
            Passed to :meth:`scvi.model.base.UnsupervisedTrainingMixin.train` and on to the
            Lightning trainer (``strategy``, ``early_stopping_patience``, ``enable_progress_bar``,
            ``datasplitter_kwargs``, ...).

        Raises
        ------
        ValueError
            Fewer than two cells (batch normalisation needs two per minibatch).
        scvae.train.NonFiniteLossError
            The loss or a gradient became NaN or infinite; the model keeps the weights of the
            last finite step and the AnnData is left as it was.
        """
        if self.adata.n_obs < 2:
            raise ValueError(
                f"Training needs at least 2 cells, the AnnData has {self.adata.n_obs}: batch "
                "normalisation estimates statistics over the cells of a minibatch."
            )
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), NonFiniteLossGuard()]
        kwargs.setdefault("check_val_every_n_epoch", 1)  # validation ELBO in the history
        # A trained or loaded module is in eval mode, and Lightning keeps the modes it finds:
        # without this, training a second time would run without dropout and with frozen
        # batch-norm statistics.
        self.module.train()
        try:
            super().train(
                max_epochs=max_epochs,
                accelerator=accelerator,
                devices=devices,
                train_size=train_size,
                validation_size=validation_size,
                batch_size=batch_size,
                early_stopping=early_stopping,
                plan_kwargs=plan_kwargs,
                load_sparse_tensor=load_sparse_tensor,
                **kwargs,
            )
        finally:
            self.module.eval()
        if annotate:
            self.annotate()

    def get_elbo(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        return_mean: bool = True,
        **kwargs,
    ) -> float | np.ndarray:
        """Evidence lower bound per cell (higher is better), on the CPU whatever the device.

        scvi-tools' :meth:`~scvi.model.base.VAEMixin.get_elbo` (same arguments), whose result
        stays on the device the model is on; on a GPU that is a CUDA tensor, which numpy
        cannot read.

        Returns
        -------
        The mean ELBO over the cells as a float, or with ``return_mean=False`` one value per
        cell.
        """
        elbo = super().get_elbo(
            adata=adata, indices=indices, batch_size=batch_size, return_mean=return_mean, **kwargs
        )
        return _on_host(elbo, return_mean)

    def get_reconstruction_error(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        return_mean: bool = True,
        **kwargs,
    ) -> dict[str, float | np.ndarray]:
        """Reconstruction error (negative log-likelihood of the counts) per cell, on the CPU.

        scvi-tools' :meth:`~scvi.model.base.VAEMixin.get_reconstruction_error` (same
        arguments), with its values moved off the model's device.

        Returns
        -------
        ``{"reconstruction_loss": ...}``: the mean over the cells as a float, or with
        ``return_mean=False`` one value per cell.
        """
        errors = super().get_reconstruction_error(
            adata=adata, indices=indices, batch_size=batch_size, return_mean=return_mean, **kwargs
        )
        return {key: _on_host(value, return_mean) for key, value in errors.items()}

    def annotate(self, adata: AnnData | None = None, batch_size: int | None = None) -> None:
        """Write the model's results into ``adata`` for scanpy to take over.

        Writes the posterior mean of z to ``adata.obsm["X_scvae"]``, so that
        ``sc.pp.neighbors(adata, use_rep="X_scvae")`` works directly.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the one the model was set up with.
            A new (query) AnnData is validated and registered first.
        batch_size
            Cells per forward pass.
        """
        adata = self._validate_anndata(adata)
        adata.obsm[LATENT_KEY] = self.get_latent_representation(adata, batch_size=batch_size)

    @classmethod
    def load(cls, dir_path: str, adata: AnnData | None = None, prefix: str | None = None, **kwargs):
        """Load a model saved with :meth:`save`, checking the file and the genes first.

        Parameters
        ----------
        dir_path
            Directory the model was saved to.
        adata
            AnnData to attach; must have the training genes in the training order. Without it,
            the AnnData saved with the model (``save(..., save_anndata=True)``) is used.
        prefix
            File name prefix given to :meth:`save`.
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.load` (``accelerator``,
            ``device``: a model saved on a GPU loads on a CPU with the default ``"auto"``).

        Raises
        ------
        SavedModelError
            The directory holds no readable scvae model (missing, truncated or foreign file).
        GeneMismatchError
            ``adata`` lacks genes of the model, or has them in another order.
        """
        saved_genes = _saved_var_names(dir_path, prefix)
        if adata is not None:
            check_same_genes(adata.var_names, saved_genes)
        return super().load(dir_path, adata=adata, prefix=prefix, **kwargs)

    def _require_integer_counts(self, piecewise_cutoff: int | None) -> None:
        """The piecewise-categorical likelihood indexes classes by count: it needs integers."""
        if piecewise_cutoff is None or self.adata is None:
            return
        layer = self.adata_manager.get_state_registry(REGISTRY_KEYS.X_KEY).get("layer")
        validate_counts(self.adata, layer, allow_non_integer=False)

    def _validate_anndata(self, adata: AnnData | None = None, copy_if_view: bool = True):
        if adata is not None and self.get_anndata_manager(adata) is None:
            check_same_genes(adata.var_names, self.adata.var_names)
            layer = self.adata_manager.get_state_registry(REGISTRY_KEYS.X_KEY).get("layer")
            validate_counts(adata, layer)
        return super()._validate_anndata(adata, copy_if_view=copy_if_view)


def _on_host(value, return_mean: bool) -> float | np.ndarray:
    """A metric from scvi-tools (a tensor on the model's device) as a float or numpy array."""
    value = torch.as_tensor(value).detach().cpu()
    return float(value) if return_mean else value.numpy()


class SavedModelError(ValueError):
    """A directory does not hold a readable saved scvae model."""


class GeneMismatchError(ValueError):
    """An AnnData does not have the model's genes in the model's order."""


def _saved_var_names(dir_path: str, prefix: str | None) -> np.ndarray:
    path = Path(dir_path) / f"{prefix or ''}model.pt"
    if not path.is_file():
        raise SavedModelError(f"No saved model at {path}: pass the directory given to save().")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        return np.asarray(saved["var_names"])
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise SavedModelError(
            f"{path} is not a readable scvae model ({type(error).__name__}: {error}); the file "
            "may be truncated or written by another tool. Save the model again."
        ) from error


def check_same_genes(var_names, model_var_names) -> None:
    """Raise :class:`GeneMismatchError` unless ``var_names`` equals the model's genes in order.

    The message says how many genes are missing, or how to reorder when only the order
    differs.
    """
    var_names, model_var_names = np.asarray(var_names), np.asarray(model_var_names)
    if np.array_equal(var_names, model_var_names):
        return
    missing = np.setdiff1d(model_var_names, var_names)
    if len(missing):
        raise GeneMismatchError(
            f"The AnnData lacks {len(missing)} of the model's {len(model_var_names)} genes "
            f"(e.g. {list(missing[:3])}); subset and order it as the training data."
        )
    raise GeneMismatchError(
        "The AnnData has the model's genes in a different order or with extra genes; select "
        "them in the training order first: adata = adata[:, model.adata.var_names]."
    )


def check_architecture(
    likelihood: str,
    dispersion: str,
    scale_by_library: bool,
    piecewise_cutoff: int | None,
    n_latent: int,
    n_hidden: int | Sequence[int],
    n_layers: int,
    dropout_rate: float,
) -> list[int]:
    """Validate the architecture options of a model and return the hidden layer widths.

    Raises a :class:`ValueError` naming the bad option and the accepted values, before any
    module is built.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood={likelihood!r} is not one of {LIKELIHOODS}.")
    if dispersion not in DISPERSIONS:
        raise ValueError(f"dispersion={dispersion!r} is not one of {DISPERSIONS}.")
    if likelihood == "constrained_poisson" and not scale_by_library:
        raise ValueError(
            "likelihood='constrained_poisson' scales rates by the library size by definition; "
            "use likelihood='poisson' for free (unconstrained) rates."
        )
    if piecewise_cutoff is not None:
        if likelihood not in PIECEWISE_LIKELIHOODS:
            raise ValueError(
                f"The piecewise-categorical variant exists for {PIECEWISE_LIKELIHOODS}, "
                f"not likelihood={likelihood!r}."
            )
        if int(piecewise_cutoff) != piecewise_cutoff or piecewise_cutoff < 1:
            raise ValueError(
                f"piecewise_cutoff must be a positive integer, got {piecewise_cutoff}."
            )
    if int(n_latent) != n_latent or n_latent < 1:
        raise ValueError(f"n_latent must be a positive integer, got {n_latent}.")
    if not 0 <= dropout_rate < 1:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}.")
    return hidden_widths(n_hidden, n_layers)
