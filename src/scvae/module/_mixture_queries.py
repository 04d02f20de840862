"""What both GMVAE modules answer from their generative model alone: profiles and new cells."""

import torch
from scvi import REGISTRY_KEYS

from scvae._counts import library_size

from ._base import batch_codes


class MixtureQueries:
    """Decoding of the mixture prior, shared by :class:`~scvae.module.GMVAEModule` and
    :class:`~scvae.module.ComponentGMVAEModule` (which provide ``prior``, ``decoder`` and
    ``n_components``)."""

    @torch.inference_mode()
    def component_profiles(
        self, transform_batch: int = 0, library_size: float = 1.0
    ) -> torch.Tensor:
        """Normalised expression decoded at each component's mean :math:`\\mu_k` (``(K,
        genes)``, rows summing to one), decoded as batch ``transform_batch`` for a cell of
        ``library_size`` total counts (which only the piecewise-categorical likelihood's
        shape depends on)."""
        means = self.prior.means.detach()
        library = torch.full((self.n_components, 1), float(library_size), device=means.device)
        batch = torch.full((self.n_components,), transform_batch, device=means.device)
        profile = self.decoder(means, library, batch).get_normalized("scale")
        return profile / profile.sum(-1, keepdim=True)

    @torch.inference_mode()
    def component_log_likelihoods(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """:math:`\\log p_\\theta(x_i \\mid z = \\mu_j)` of the cells of a minibatch
        (registered ``tensors``) under every component j (``(cells, K)``): each component's
        mean decoded with the cell's library size and batch."""
        device = self.prior.means.device
        x = tensors[REGISTRY_KEYS.X_KEY].to(device)
        batch = batch_codes(tensors[REGISTRY_KEYS.BATCH_KEY].to(device))
        library = library_size(x)
        columns = [
            self.decoder(mean.expand(len(library), -1), library, batch).log_prob_sum(x)
            for mean in self.prior.means.detach()
        ]
        return torch.stack(columns, 1)

    @torch.inference_mode()
    def sample_prior(
        self, library: torch.Tensor, cluster: int | None = None, transform_batch: int = 0
    ) -> torch.Tensor:
        """Counts of new cells drawn from the generative model, one per entry of ``library``.

        Parameters
        ----------
        library
            Total count of each new cell, ``(cells, 1)`` (read by library-scaled likelihoods).
        cluster
            Draw every cell from this component; by default y is drawn from p(y).
        transform_batch
            Batch code to decode as.
        """
        z, _ = self.prior.sample(len(library), cluster)
        batch = torch.full((len(library),), transform_batch, device=z.device)
        return self.decoder(z, library.to(z), batch).sample()
