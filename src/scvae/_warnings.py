"""Warnings that name the user's line, however deep in scvae or its training they arise."""

import inspect
import os
import warnings

import lightning
import scvi
import torch


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path)) + os.sep


#: Code a warning's location skips: scvae's own, and what runs between the user's call and
#: scvae's callbacks during training (scvi-tools, Lightning, torch's decorators).
_INTERNAL = tuple(
    _folder(path) for path in (__file__, scvi.__file__, lightning.__file__, torch.__file__)
)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """:func:`warnings.warn` at the first frame outside scvae and the libraries it calls.

    A fixed ``stacklevel`` names the right line only for one call path; the same check is
    reached from :func:`scvae.setup_anndata`, from :func:`scvae.tl.fit_model` and from
    ``train()``, so the level is counted from the stack instead. (The command line prints
    warnings without a source line: all of its code is scvae's.)

    Parameters
    ----------
    message
        The warning's text.
    category
        The warning's class.
    """
    warnings.warn(message, category, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """``stacklevel`` of :func:`warn`'s call of :func:`warnings.warn` that names the first
    frame outside :data:`_INTERNAL` (``warn``'s own frame is level 1)."""
    frame = inspect.currentframe().f_back  # warn's frame
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL):
        frame = frame.f_back
        level += 1
    return level
