"""Training helpers plugged into scvi-tools' Lightning trainer."""

from ._callbacks import NonFiniteLossError, NonFiniteLossGuard
from ._component_initialization import ComponentInitialization
from ._training_plan import ScvaeTrainingPlan

__all__ = [
    "ComponentInitialization",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "ScvaeTrainingPlan",
]
