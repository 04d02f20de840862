"""What every scvae count likelihood provides beyond :class:`torch.distributions.Distribution`."""

import inspect

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints


class CountDistribution(Distribution):
    """Base class of the count likelihoods over ``(..., cells, genes)``.

    Subclasses implement ``log_prob`` (per gene), ``mean``, ``variance``, ``scale`` (the
    normalised expression) and ``sample``; this class adds what the models need on top:
    the log-likelihood of each cell summed over its genes (:meth:`log_prob_sum`, which a
    subclass may compute faster), scvi-tools' ``get_normalized`` and the parameters by name
    (:meth:`likelihood_parameters`), and :meth:`expand`, built from the parameters named in
    ``arg_constraints`` (and ``log_scale``) as constructor arguments.
    """

    support = constraints.nonnegative_integer

    @property
    def scale(self) -> Tensor:
        """Normalised expression over the last (gene) axis."""
        raise NotImplementedError

    def log_prob_sum(self, value: Tensor) -> Tensor:
        """Log-likelihood of each cell, ``log_prob(value).sum(-1)``.

        Parameters
        ----------
        value
            Counts, dense or a torch sparse CSR ``(cells, genes)`` matrix.
        """
        return self.log_prob(value).sum(-1)

    def likelihood_parameters(self) -> dict[str, Tensor]:
        """The parameters of the distribution by name, each with cells on axis -2 and genes
        on axis -1 (a parameter with more axes, such as a mixture's components, has them
        before the cell axis; a mixture's weights are ``(cells, K)``).

        ``"mean"`` is the mean count parameter (the rate of a Poisson, :math:`\\mu` of a
        negative binomial, also of their zero-inflated forms, as scvi-tools names it);
        subclasses add their others: ``"dispersions"`` (the inverse dispersion
        :math:`\\theta`) and ``"dropout"`` (the zero-inflation probability :math:`\\pi`).
        """
        return {"mean": self.mean}

    def get_normalized(self, key: str) -> Tensor:
        """``"mu"``: the mean count parameter (``likelihood_parameters()["mean"]``: the mean,
        except for the zero-inflated likelihoods, whose rate or :math:`\\mu` leaves the extra
        zeros out); ``"scale"``: the normalised expression (scvi-tools' convention).

        Parameters
        ----------
        key
            ``"mu"`` or ``"scale"``.
        """
        if key == "mu":
            return self.likelihood_parameters()["mean"]
        if key == "scale":
            return self.scale
        raise ValueError(f"normalized key {key!r} not recognized, use 'mu' or 'scale'")

    def expand(self, batch_shape: torch.Size | tuple[int, ...], _instance=None) -> Distribution:
        """This distribution with batch shape ``batch_shape``: new leading axes, or axes of
        size 1 repeated, as :meth:`torch.distributions.Distribution.expand` (the parameters
        are expanded views, not copies; one with fewer axes than the batch, such as a
        per-gene dispersion, keeps its shape and broadcasts).

        The distribution is rebuilt by its constructor from the parameters named in
        ``arg_constraints`` (and ``log_scale``), stored under those names; a subclass whose
        constructor takes other arguments must override this method.

        Parameters
        ----------
        batch_shape
            The new batch shape; the current one must broadcast to it.
        """
        cls_name, batch_shape = type(self).__name__, self._expandable_to(batch_shape)
        try:
            names = [*self.arg_constraints, "log_scale"]
        except NotImplementedError:  # torch's default: no arg_constraints declared
            names = []
        arguments = set(inspect.signature(type(self).__init__).parameters) - {"self"}
        stored = set(names[:-1]) <= vars(self).keys()
        if _instance is not None or not stored or arguments != {*names, "validate_args"}:
            raise NotImplementedError(
                f"{cls_name} cannot be expanded from its arg_constraints: its constructor "
                f"takes {sorted(arguments)}. Override expand() in {cls_name}."
            )
        parameters = {name: vars(self).get(name) for name in names}
        for name, value in parameters.items():
            if value is not None and value.dim() == len(self.batch_shape):
                parameters[name] = value.expand(batch_shape)
        return type(self)(**parameters, validate_args=self._validate_args)

    def _expandable_to(self, batch_shape: torch.Size | tuple[int, ...]) -> torch.Size:
        """``batch_shape`` as a :class:`torch.Size`, refused unless the current batch shape
        broadcasts to it."""
        batch_shape = torch.Size(batch_shape)
        try:
            expandable = torch.broadcast_shapes(self.batch_shape, batch_shape) == batch_shape
        except RuntimeError:
            expandable = False
        if not expandable:
            raise ValueError(
                f"Cannot expand {type(self).__name__} of batch shape "
                f"{tuple(self.batch_shape)} to {tuple(batch_shape)}: the current shape must "
                "broadcast to the new one."
            )
        return batch_shape
