"""The parameters of p(x | z) per cell, and the library size the decoder scales by."""

from collections.abc import Iterable

import numpy as np
import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass

from scvae._counts import library_size


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
