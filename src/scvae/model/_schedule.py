"""How long a fit trains, and when in it the GMVAE's components are placed."""

#: scvi-tools' rule for the default number of epochs: 400 up to 20,000 cells, then fewer in
#: proportion, so that large data sets get about 8 million cell visits.
EPOCH_RULE_CELLS, EPOCH_RULE_EPOCHS = 20_000, 400


def default_max_epochs(n_obs: int) -> int:
    """scvi-tools' default training length for ``n_obs`` cells (at least one epoch)."""
    return max(1, min(EPOCH_RULE_EPOCHS, round(EPOCH_RULE_CELLS * EPOCH_RULE_EPOCHS / n_obs)))


def default_component_init_epochs(max_epochs: int) -> tuple[int, ...]:
    """Epochs after which :meth:`GMVAE.train` places the components: 50% and 90% of training."""
    return tuple(sorted({max(1, max_epochs // 2), max(1, (9 * max_epochs) // 10)}))


def default_kl_warmup_epochs(max_epochs: int) -> int:
    """Epochs of KL warm-up of a GMVAE fit: the first 30% of training."""
    return max(1, (3 * max_epochs) // 10)
