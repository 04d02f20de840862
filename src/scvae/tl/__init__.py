"""Tools: compare and evaluate scvae models (``scvae.tl``, as in scanpy)."""

from ._compare import compare_models
from ._workflow import evaluate_model

__all__ = ["compare_models", "evaluate_model"]
