"""A fit either completes or leaves a trained model as it was."""

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Models inside earlier_fit_kept_on_failure: a fit that calls another (a GMVAE's restarts call
# the base class's train) is guarded once, by the outermost call.
_GUARDED: weakref.WeakSet = weakref.WeakSet()

EARLIER_FIT_KEPT = (
    "The model keeps its earlier fit (weights, history and results as before this train() call)."
)


@contextmanager
def earlier_fit_kept_on_failure(model) -> Iterator[None]:
    """Run a fit of ``model``; if it raises, a model trained before gets its earlier fit back.

    The module's weights and statistics (on the host) and the model's fit results (its
    attributes ending in ``_``: ``is_trained_``, ``history_``, clusters; and scvi-tools'
    ``trainer``) are kept before the fit and put back if it fails, and the error gets a note
    saying so. A model never trained keeps what the failed fit left (the weights of its last
    finite step), except that a failure before the first step also restores its results.
    """
    if model in _GUARDED:
        yield
        return
    fitted = {
        name: value
        for name, value in vars(model).items()
        if name.endswith("_") or name == "trainer"  # scvi-tools' trainer of the fit
    }
    # scvi-tools extends history_ in place when a trained model trains on.
    if isinstance(fitted.get("history_"), dict):
        fitted["history_"] = dict(fitted["history_"])
    # On the host: Lightning may move the module off its device when a fit fails.
    state = {
        name: value.detach().cpu().clone() for name, value in model.module.state_dict().items()
    }
    _GUARDED.add(model)
    try:
        yield
    except BaseException as error:
        now = model.module.state_dict()
        unchanged = all(torch.equal(now[name].cpu(), value) for name, value in state.items())
        if not unchanged and fitted.get("is_trained_"):
            model.module.load_state_dict(state)
            error.add_note(EARLIER_FIT_KEPT)
        if unchanged or fitted.get("is_trained_"):
            vars(model).update(fitted)
        del state  # not kept alive by the traceback
        raise
    finally:
        _GUARDED.discard(model)
