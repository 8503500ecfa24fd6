"""Writing files safely: a temporary file in the target's directory, then an atomic rename onto it."""
from __future__ import annotations

import errno
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from typing import Callable, Iterator


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` then rename onto ``path``: a failure never leaves a partial file.

    The temporary file sits next to ``path`` (same file system, so the rename is atomic), keeps
    ``path``'s extension (writers that look at it still work) and gets the usual permissions
    (0666 minus the umask), not ``mkstemp``'s 0600.

    A symbolic link at ``path`` is written through, as ``torch.save``, ``cp`` and the shell's ``>`` do: the
    file it points to is replaced (atomically, in that file's directory) and the link stays a link
    (``latest.pt -> runs/7/model.pt`` keeps pointing there). A link to something other than a regular file
    (a device, a directory) is refused.
    """
    path = through_links(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "no such directory", directory)
    with _terminating_raises():
        _write_atomic(path, write, directory)


MAX_LINKS = 40  # as Linux's ELOOP limit


def through_links(path: str) -> str:
    """The path a chain of symbolic links at ``path``'s last component ends at (``path`` itself if none)."""
    for _ in range(MAX_LINKS):
        if not os.path.islink(path):
            break
        path = os.path.join(os.path.dirname(path), os.readlink(path))  # an absolute target replaces the directory
    else:
        raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
    if os.path.exists(path) and not os.path.isfile(path):
        raise OSError(errno.EEXIST, "exists and is not a regular file: refusing to replace it", path)
    return path


def _write_atomic(path: str, write: Callable[[str], None], directory: str) -> None:
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


class Terminated(SystemExit):
    """SIGTERM or SIGHUP arrived while a file was being written: unwinds (removing the temporary), exits 128 + signal."""


@contextmanager
def _terminating_raises() -> Iterator[None]:
    """While writing, SIGTERM and SIGHUP (whose default is to die on the spot, leaving the temporary file behind)
    raise :class:`Terminated` instead, as SIGINT raises KeyboardInterrupt. Handlers set by the program are kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(128 + signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) == signal.SIG_DFL:
            previous[number] = signal.signal(number, terminate)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def same_file(first: str, second: str) -> bool:
    """Whether two paths name one file (a link, ``./x`` and ``x``, a hard link); ``False`` if either is missing."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` with :func:`write_atomic`."""
    write_atomic(path, lambda temporary: write_bytes(temporary, data))
