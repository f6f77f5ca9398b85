"""Writes output files under a temporary name and moves them into place only when complete.

A crash or an error never leaves a half-written file under the final name. Used by every writer
of a pimdram file format (stats, kernel traces, binary request traces).
"""
import contextlib
import os
import tempfile
from pathlib import Path

from .errors import OutputExistsError


def temp_path_for(path):
    """A new, empty temporary file beside `path` (same directory, so the final move is a rename),
    with the permissions a plain open() would give it."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def publish(tmp, path, overwrite=True):
    """Flush `tmp` to disk and move it to `path`. Without `overwrite` an existing `path` is never
    replaced, not even one created while the file was being written."""
    tmp, path = Path(tmp), Path(path)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        # a hard link fails if the name exists: no window in which another file is clobbered
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it") from None
    except OSError:
        # file systems without hard links: check, then rename
        if path.exists():
            raise OutputExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_output(path, mode="w", overwrite=True, **open_kwargs):
    """`with atomic_output(path) as f:` writes `f` to a temporary file that becomes `path` when
    the block ends normally and is removed when it raises."""
    tmp = temp_path_for(path)
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
        publish(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
