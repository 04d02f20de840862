"""Tools: fit, load, evaluate and compare scvae models (``scvae.tl``, as in scanpy).

Names imported ``as`` themselves and not in ``__all__`` serve scvae's other packages.
"""

from ._compare import compare_models
from ._demo import run_demo
from ._evaluate import check_labels as check_labels
from ._evaluate import evaluate_model
from ._fit import fit_model
from ._genes import select_variable_genes
from ._load import load_model, saved_genes

__all__ = [
    "compare_models",
    "evaluate_model",
    "fit_model",
    "load_model",
    "run_demo",
    "saved_genes",
    "select_variable_genes",
]
