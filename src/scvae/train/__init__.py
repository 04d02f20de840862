"""Training helpers plugged into scvi-tools' Lightning trainer."""

from ._agreement import mean_agreements
from ._callbacks import NonFiniteLossError, NonFiniteLossGuard, as_callback_list
from ._component_initialization import ComponentInitialization
from ._convergence import ClusterConvergence
from ._progress import EpochProgressBar, StopReport
from ._progress import with_progress_report as with_progress_report
from ._quiet import quiet_training
from ._training_plan import ScvaeTrainingPlan, metric_mode
from ._training_plan import logged_metrics as logged_metrics

__all__ = [
    "ClusterConvergence",
    "ComponentInitialization",
    "EpochProgressBar",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "ScvaeTrainingPlan",
    "StopReport",
    "as_callback_list",
    "mean_agreements",
    "metric_mode",
    "quiet_training",
]
