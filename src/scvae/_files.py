"""Files written whole or not at all."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_whole(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` beside ``path``, then the file moved onto ``path``: a command
    stopped or failing while it writes leaves ``path`` as it was (absent or the old file)."""
    # Hidden, and with the path's suffix, from which writers such as matplotlib take the format.
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix
    )
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(Path(temporary))
        # mkstemp's file is private (0600); keep a replaced file's mode, else the usual one.
        os.chmod(temporary, path.stat().st_mode if path.exists() else 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
