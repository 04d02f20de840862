"""The base class of scvae's models: registration, training and results in the AnnData."""

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Self

from anndata import AnnData
from scvi.model.base import BaseModelClass, RNASeqMixin, UnsupervisedTrainingMixin, VAEMixin

from scvae._arguments import check_flag
from scvae._result_keys import DEFAULT_KEY, drop_cluster_results, result_keys
from scvae.data import (
    CountLayerField,
    TensorDataLoader,
    TensorDataSplitter,
    check_own_registration,
    check_setup,
    counts_are_sparse,
    registered_layer,
    registration_of,
    without_scvi_setup_warnings,
)
from scvae.train import (
    NonFiniteLossGuard,
    ScvaeTrainingPlan,
    as_callback_list,
    metric_mode,
    quiet_training,
    with_progress_report,
)

from ._failed_fit import earlier_fit_kept_on_failure
from ._likelihood_queries import LikelihoodQueriesMixin
from ._option_checks import check_piecewise_counts
from ._query_checks import cell_positions, check_registered_batches, check_same_genes
from ._registration import register_counts
from ._saved import backed_file_kept, check_attachable, migrated, read_saved_model, save_whole
from ._schedule import kl_warmup_within
from ._training_checks import check_results_keep_off_registered_columns, check_training_options


class ScvaeModel(
    LikelihoodQueriesMixin, RNASeqMixin, VAEMixin, UnsupervisedTrainingMixin, BaseModelClass
):
    """Base class of the scvae models (:class:`~scvae.VAE`, :class:`~scvae.GMVAE`).

    Registration, save/load, the training loop (KL warm-up, early stopping, accelerators) and the
    generic posterior queries come from scvi-tools' mixins; this class adds input validation, a
    faster data path (:class:`~scvae.data.TensorDataLoader`) and results where scanpy expects them.

    Parameters
    ----------
    adata, registry
        Where the model's data come from: an AnnData registered with
        :func:`scvae.setup_anndata`, or without one scvi-tools' registry of its setup.
    """

    _data_loader_cls = TensorDataLoader
    _data_splitter_cls = TensorDataSplitter
    _training_plan_cls = ScvaeTrainingPlan
    #: Constructor arguments a model saved before they existed lacks, as it was built.
    _saved_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, adata: AnnData | None = None, registry: object | None = None):
        if adata is not None:
            check_own_registration(adata, type(self))
        super().__init__(adata, registry)

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        batch_key: str | None = None,
        labels_key: str | None = None,
        allow_non_integer: bool = False,
        **kwargs: Any,
    ) -> None:
        """Validate and register the raw counts (and batch and label columns) for this class.

        Parameters
        ----------
        adata, layer, batch_key, labels_key, allow_non_integer
            As for :func:`scvae.setup_anndata` (prefer it: it registers for every model).
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.
        """
        if "source_registry" not in kwargs:  # a transfer checks the counts itself
            check_setup(adata, layer, batch_key, labels_key, allow_non_integer)
        register_counts(cls, adata, layer, batch_key, labels_key, allow_non_integer, **kwargs)

    def _query_loader(
        self,
        adata: AnnData,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        **loader_options,
    ):
        """The loader of scvae's own passes over cells after training (latent means, clusters,
        the cluster selection; ``adata`` validated): sparse counts come as sparse CSR
        minibatches, as in training, since a dense copy of every minibatch fragments the
        heap over a million cells; scvi-tools' queries read the counts densely."""
        sparse = counts_are_sparse(self.get_anndata_manager(adata, required=True))
        return self._make_data_loader(
            adata, indices, batch_size=batch_size, load_sparse_tensor=sparse, **loader_options
        )

    def _make_data_loader(self, adata: AnnData, indices: Sequence[int] | None = None, **kwargs):
        """scvi-tools' loader of every query: warns if untrained, ``indices`` checked."""
        self._check_if_trained(warn=True)
        positions = cell_positions(indices, adata.n_obs)
        return super()._make_data_loader(adata, indices=positions, **kwargs)

    def _query_minibatches(
        self,
        adata: AnnData | None,
        indices: Sequence[int] | None,
        batch_size: int | None,
        dataloader: Iterable[dict] | None,
        **loader_options,
    ) -> Iterable[dict]:
        """A query's minibatches: ``dataloader``, or :meth:`_query_loader`'s over ``adata``."""
        if dataloader is None:
            adata = self._validate_anndata(adata)
            return self._query_loader(adata, indices, batch_size, **loader_options)
        if adata is not None:
            raise ValueError("Give adata or a dataloader, not both.")
        return dataloader

    def train(
        self,
        max_epochs: int | None = None,
        *,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        train_size: float | None = None,
        validation_size: float | None = None,
        batch_size: int = 128,
        early_stopping: bool = False,
        plan_kwargs: dict | None = None,
        annotate: bool = True,
        key_added: str = DEFAULT_KEY,
        load_sparse_tensor: bool | None = None,
        enable_progress_bar: bool = True,
        **kwargs: Any,
    ) -> None:
        """Train the model with scvi-tools' training plan and Lightning trainer.

        Parameters
        ----------
        max_epochs
            Number of passes through the training cells; by default scvi-tools' rule (400
            epochs for up to 20,000 cells, proportionally fewer for more).
        accelerator, devices
            Where to train: ``"auto"`` uses a CUDA GPU when there is one, else the CPU (also
            on Apple silicon: pass ``"mps"`` for its GPU); ``devices=2`` trains on two GPUs
            (with ``strategy="ddp"``).
        train_size, validation_size
            Fractions of the cells for training (default 0.9) and validation (default: the rest).
        batch_size
            Cells per minibatch.
        early_stopping
            Stop when the validation ELBO stops improving (see ``early_stopping_patience``).
        plan_kwargs
            Passed to :class:`~scvae.train.ScvaeTrainingPlan`, e.g. ``{"lr": 1e-3}``; the KL
            warm-up lasts ``min(400, max_epochs)`` epochs unless one is set here.
        annotate
            When training ends, write the results into the registered AnnData (see
            :meth:`annotate`). Nothing is written if training fails.
        key_added
            Where :meth:`annotate` writes the results (``obsm[f"X_{key_added}"]``, ...).
        load_sparse_tensor
            Serve minibatches as torch sparse CSR tensors (the encoders and the NB read only
            the non-zero counts); by default when the counts are (<= 30% non-zero, or backed).
        enable_progress_bar
            Show a bar over the epochs with the training and validation ELBO; a Lightning progress
            bar among the ``callbacks`` (or scvi-tools', ``simple_progress_bar=True``) replaces it.
        **kwargs
            Passed to :meth:`scvi.model.base.UnsupervisedTrainingMixin.train` and on to the
            Lightning trainer (``strategy``, ``early_stopping_patience``, ``callbacks``,
            ``datasplitter_kwargs``, ...).

        Raises
        ------
        ValueError
            Fewer than three cells (batch normalisation needs two per minibatch), counts
            changed since :func:`scvae.setup_anndata`, or early stopping without validation.
        TypeError
            A ``plan_kwargs`` key that neither the training plan nor the module takes, or a
            ``datasplitter_kwargs`` key that neither the data splitter nor its loader takes.
        scvae.train.NonFiniteLossError
            The loss or a gradient became NaN or infinite. The AnnData is left as it was; a
            trained model keeps its earlier fit, a new one the weights of the last finite step.
        """
        sizes = dict(batch_size=batch_size, train_size=train_size, validation_size=validation_size)
        options = dict(kwargs, **sizes, early_stopping=early_stopping, annotate=annotate)
        max_epochs, batch_size, _ = check_training_options(
            self, max_epochs, plan_kwargs, key_added, options
        )
        plan_kwargs = kl_warmup_within(plan_kwargs, max_epochs, self.adata.n_obs)
        self._validate_anndata()  # also replays its setup if another replaced it
        callbacks = [*as_callback_list(kwargs.pop("callbacks", None)), NonFiniteLossGuard()]
        kwargs.setdefault("check_val_every_n_epoch", 1)  # validation ELBO in the history
        kwargs.setdefault("simple_progress_bar", False)  # scvae's own bar, on stderr
        callbacks, show_progress = with_progress_report(
            callbacks, enable_progress_bar, kwargs["simple_progress_bar"]
        )
        if early_stopping:  # the history's ELBOs rise, its losses fall
            monitor = kwargs.get("early_stopping_monitor", "elbo_validation")
            kwargs.setdefault("early_stopping_mode", metric_mode(monitor))
        self.module.train()  # Lightning keeps a trained or loaded module's eval mode
        try:
            with quiet_training(), earlier_fit_kept_on_failure(self):
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
                    callbacks=callbacks,
                    enable_progress_bar=show_progress,
                    **kwargs,
                )
                # Computed within the guard; the AnnData is written only once all is done.
                self.module.eval()
                latent = self.get_latent_representation() if annotate else None
        finally:
            self.module.eval()
        if annotate:
            self._write_latent(self.adata, latent, key_added)

    def summary(self) -> dict[str, Any]:
        """The fit in a few numbers, as a JSON-serialisable dict: the model class, its data's
        size, the likelihood, the epochs trained and the last training and validation ELBO
        per cell (``None`` before training or without validation cells)."""
        history = self.history if self.is_trained_ else {}

        def last(key: str) -> float | None:
            return float(history[key].iloc[-1, 0]) if key in history else None

        return {
            "model": type(self).__name__,
            "n_cells": int(self.adata.n_obs),
            "n_genes": int(self.adata.n_vars),
            "likelihood": self.init_params_["non_kwargs"]["likelihood"],
            "epochs": len(history["elbo_train"]) if "elbo_train" in history else 0,
            "elbo_train": last("elbo_train"),
            "elbo_validation": last("elbo_validation"),
        }

    def annotate(
        self,
        adata: AnnData | None = None,
        *,
        batch_size: int | None = None,
        key_added: str = DEFAULT_KEY,
    ) -> None:
        """Write the posterior mean of z into ``adata.obsm["X_scvae"]``, for scanpy to take
        over: ``sc.pp.neighbors(adata, use_rep="X_scvae")`` reads it.

        Parameters
        ----------
        adata
            AnnData with the registered genes; defaults to the one the model was set up with.
            A new (query) AnnData is validated and registered first.
        batch_size
            Cells per forward pass.
        key_added
            Results go to ``obsm[f"X_{key_added}"]``; cluster results of an earlier model
            under the same key are removed.
        """
        adata = self._validate_anndata(adata)
        check_results_keep_off_registered_columns(self.adata_manager, key_added)
        latent = self.get_latent_representation(adata, batch_size=batch_size)
        self._write_latent(adata, latent, key_added)

    @staticmethod
    def _write_latent(adata: AnnData, latent, key_added: str) -> None:
        """Write :meth:`annotate`'s latent means into ``adata``, dropping the cluster results
        of an earlier model under ``key_added``."""
        adata.obsm[result_keys(key_added)["latent"]] = latent
        drop_cluster_results(adata, key_added)

    def save(
        self,
        dir_path: str,
        prefix: str | None = None,
        overwrite: bool = False,
        save_anndata: bool = False,
        **kwargs: Any,
    ) -> None:
        """Save the model as :meth:`scvi.model.base.BaseModelClass.save` does, whole or not at
        all (written in a hidden folder, then moved in), unless its genes (with
        ``save_anndata``, its counts) changed in place: :meth:`load` reads an AnnData there
        only if this save wrote it; no other file there is removed.

        Parameters
        ----------
        dir_path, prefix, overwrite, save_anndata, **kwargs
            As for :meth:`scvi.model.base.BaseModelClass.save`.
        """
        check_flag(save_anndata, "save_anndata")
        self._check_registered_data(counts=bool(save_anndata))  # the genes it saves, or all

        def save(path: str) -> None:
            with backed_file_kept(self.adata if save_anndata else None):
                super(ScvaeModel, self).save(path, prefix, True, save_anndata, **kwargs)

        save_whole(save, dir_path, prefix, overwrite, save_anndata)

    @classmethod
    def load(
        cls,
        dir_path: str,
        adata: AnnData | None = None,
        accelerator: str = "auto",
        device: int | str = "auto",
        prefix: str | None = None,
        **kwargs: Any,
    ) -> Self:
        """Load a model saved with :meth:`save`, checking the file and the genes first (a
        GMVAE saved by scvae 0.1.0 loads as the ``inference="per_component"`` model it is).

        Parameters
        ----------
        dir_path, prefix
            Where the model was saved: the directory and the file name prefix given to :meth:`save`.
        adata
            AnnData to attach; must have the training genes in the training order. Without it,
            the AnnData saved with the model (``save(..., save_anndata=True)``) is used.
        accelerator, device
            Where the model goes, as in :meth:`scvi.model.base.BaseModelClass.load` (in its order of
            arguments); with the default ``"auto"``, a model saved on a GPU loads on a CPU.
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.load`.

        Raises
        ------
        SavedModelError
            The directory holds no readable scvae model (missing, truncated or foreign file).
        GeneMismatchError
            ``adata`` lacks genes of the model, or has them in another order.
        ValueError
            No ``adata`` given for a model saved without its AnnData.
        """
        saved = read_saved_model(dir_path, prefix, cls)
        check_attachable(adata, dir_path, prefix, saved)
        # scvi-tools registers adata anew for the class; the user's own setup stays in force.
        own_setup = registration_of(cls, adata)
        # Quietly: scvi-tools announces each file it reads.
        with migrated(dir_path, prefix, saved, cls._saved_defaults) as path, quiet_training():
            model = super().load(path, adata, accelerator, device, prefix, **kwargs)
        if own_setup is not None:
            cls.register_manager(own_setup)
        return model

    def _require_integer_counts(self, piecewise_cutoff: int | None) -> None:
        """The piecewise-categorical likelihood indexes classes by count: it needs integers."""
        if self.adata is not None:
            layer = registered_layer(self.adata_manager)
            check_piecewise_counts(self.adata, layer, piecewise_cutoff)

    def _check_registered_data(self, adata: AnnData | None = None, *, counts: bool = True) -> None:
        """Refuse registered data changed in place (:meth:`CountLayerField.check_unchanged`)."""
        manager = self.adata_manager if adata is None else self.get_anndata_manager(adata)
        if manager is not None:
            CountLayerField.check_unchanged(manager, counts=counts)

    def _validate_anndata(self, adata: AnnData | None = None, copy_if_view: bool = True):
        own = adata is None or adata is self.adata
        if not own:  # also a copy or view of a registered AnnData (its uuid kept), to which
            # scvi-tools transfers the setup checking only the number of genes.
            check_same_genes(adata.var_names, self.adata.var_names)
        target = self.adata if own else adata
        if target is not None:  # batches the model lacks (the model's own AnnData: added
            # since setup), refused before scvi-tools registers it again (BatchField)
            check_registered_batches(target, self.adata_manager)
        # scvi-tools announces a transfer and repeats the warnings scvae gave at setup.
        with quiet_training(), without_scvi_setup_warnings():
            if own or self.get_anndata_manager(adata) is not None:
                self._check_registered_data(adata)
            return super()._validate_anndata(adata, copy_if_view=copy_if_view)
