"""torch modules: the maths of the models, free of AnnData."""

from ._component_gmvae import ComponentGMVAEModule
from ._decoder import CountDecoder
from ._encoder import GaussianEncoder
from ._gmvae import GMVAEModule
from ._input_layer import CountInputLinear
from ._mixture_prior import MixturePrior
from ._networks import MLP
from ._vae import VAEModule

__all__ = [
    "MLP",
    "ComponentGMVAEModule",
    "CountDecoder",
    "CountInputLinear",
    "GMVAEModule",
    "GaussianEncoder",
    "MixturePrior",
    "VAEModule",
]
