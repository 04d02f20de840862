"""Training helpers plugged into scvi-tools' Lightning trainer."""

from ._callbacks import NonFiniteLossError, NonFiniteLossGuard

__all__ = ["NonFiniteLossError", "NonFiniteLossGuard"]
