"""Writing files safely: a temporary file in the target's directory, then an atomic rename onto it."""
from __future__ import annotations

import errno
import os
import tempfile
from typing import Callable


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` then rename onto ``path``: a failure never leaves a partial file.

    The temporary file sits next to ``path`` (same file system, so the rename is atomic), keeps
    ``path``'s extension (writers that look at it still work) and gets the usual permissions
    (0666 minus the umask), not ``mkstemp``'s 0600.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "no such directory", directory)
    handle, temporary = tempfile.mkstemp(prefix=".netspec-", suffix=os.path.splitext(path)[1], dir=directory)
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` with :func:`write_atomic`."""
    write_atomic(path, lambda temporary: write_bytes(temporary, data))
