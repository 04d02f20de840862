"""torch modules: the maths of the models, free of AnnData.

Names imported ``as`` themselves and not in ``__all__`` serve scvae's other packages.
"""

from ._component_gmvae import ComponentGMVAEModule
from ._decoder import CountDecoder
from ._encoder import GaussianEncoder
from ._gmvae import GMVAEModule
from ._input_layer import CountInputLinear
from ._mixture_prior import MixturePrior
from ._networks import MLP
from ._networks import batch_norm_places as batch_norm_places
from ._networks import hidden_widths as hidden_widths
from ._parameter_heads import DISPERSIONS as DISPERSIONS
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
