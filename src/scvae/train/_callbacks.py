"""Lightning callbacks that scvae adds to scvi-tools' trainer."""

from collections.abc import Iterable

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def as_callback_list(callbacks: Callback | Iterable[Callback] | None) -> list[Callback]:
    """The ``callbacks`` a user gave to ``train``, as Lightning takes them (one, several or
    none), as a list."""
    if callbacks is None:
        return []
    return [callbacks] if isinstance(callbacks, Callback) else list(callbacks)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the weights were not updated."""


class NonFiniteLossGuard(Callback):
    """Stop training at the first non-finite loss or gradient, before it reaches the weights.

    The check runs before the backward pass (loss) and before the optimiser step (gradients),
    so the module keeps the last finite weights and the error names the epoch and step.
    """

    def on_before_backward(
        self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor
    ) -> None:
        """Refuse a non-finite loss."""
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"The training loss became {loss.item()} at epoch {trainer.current_epoch}, "
                f"step {trainer.global_step}; training stopped before it reached the weights. "
                "Likely causes: a learning rate too high for this "
                "architecture (try plan_kwargs={'lr': 1e-4}), counts that are not raw counts, "
                "or extreme values in the data."
            )

    def __init__(self):
        self._parameters: list[torch.Tensor] | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Collect the parameters once per fit, not at every step."""
        self._parameters = list(pl_module.parameters())

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        """Refuse non-finite gradients, which would corrupt the weights.

        One sum per gradient tensor: a sum is NaN or infinite exactly when an entry is, or
        when finite entries add up beyond the float range (gradients that large are refused
        too). That is one pass over the gradients instead of a test and a reduction each."""
        parameters = self._parameters or list(pl_module.parameters())
        grads = [p.grad for p in parameters if p.grad is not None]
        if grads and not torch.stack([g.sum() for g in grads]).isfinite().all():
            raise NonFiniteLossError(
                f"Non-finite gradients at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}; training stopped before they reached the weights. "
                "Try a lower learning rate (plan_kwargs={'lr': 1e-4}) or gradient clipping "
                "(gradient_clip_val=10)."
            )
