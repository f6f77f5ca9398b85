"""Writes output files under a temporary name and moves them into place only when complete.

A crash, an error or a signal never leaves a half-written file under the final name. Used by
every writer of a pimdram file (stats, kernel traces, binary request traces, sweep tables,
figures). Also the one place that decides where an output may go (`output_path`): a regular
file or a new one, never a directory, a device, a pipe or one of the run's inputs; a symbolic
link is followed (its target is replaced, the link stays).

Temporary files are named `.NAME.pimdram-HOST-PID-XXXXXXXX.tmp` beside the output. A process
killed outright (SIGKILL, a node failure) cannot remove its own, so the next run that writes the
same output removes those whose process, on this host, no longer exists.
"""
import contextlib
import functools
import os
import socket
import stat
import tempfile
from pathlib import Path

from . import _signals
from .errors import OutputError, OutputExistsError

TEMP_MARK = "pimdram"
_NAME_KEPT = 64          # characters of the output's name kept in its temporary name
_HOST = "".join(c if c.isalnum() or c == "." else "_" for c in socket.gethostname())[:32] or "host"


_run_inputs = None      # files read by the run in progress (run_inputs), or None outside one


@contextlib.contextmanager
def run_inputs():
    """A run: every file its readers note (`note_input`: config YAML and its `base:` chain, model
    config.json, DRAMsim3 .ini, requests CSV, kernel trace) is one of its inputs, which no output of
    the run may replace. Nested runs join the outermost one."""
    global _run_inputs
    if _run_inputs is not None:
        yield
        return
    _run_inputs = []
    try:
        yield
    finally:
        _run_inputs = None


def one_run(function):
    """Decorator: `function` (a library entry point such as replay_requests) is one run (run_inputs)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with run_inputs():
            return function(*args, **kwargs)
    return wrapper


def note_input(path):
    """Record `path` as an input of the run in progress (nothing outside a run)."""
    if _run_inputs is not None and path is not None:
        _run_inputs.append(os.fspath(path))


def _strerror(exc):
    return exc.strerror or str(exc)


def output_path(path, overwrite=False, inputs=()):
    """The file an output named `path` will be written to, checked before any work is done.

    Raises OutputError (one line) when the name is empty, names a directory, a device, a pipe or
    a socket, is the same file as one of `inputs`, lies in a missing or unwritable directory or
    is too long; OutputExistsError when it exists and `overwrite` is false. A symbolic link
    resolves to its target. The files read so far by the run in progress (`run_inputs`) count as
    inputs too."""
    text = os.fspath(path)
    if not str(text).strip():
        raise OutputError("the output file name is empty; give a file name")
    given = Path(text)
    if str(text).endswith(os.sep):
        raise OutputError(f"{given}: names a directory; give a file name")
    target = given
    st = _lstat(given)
    if st is not None and stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(given))
        st = _lstat(target)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{given} is a directory; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{given} is not a regular file (a device, pipe or socket); pimdram writes "
                              "regular files only")
        for item in list(inputs) + (_run_inputs or []):
            if _same_file(item, target):
                raise OutputError(f"{given} is also an input of this run ({item}); write the output to "
                                  "another file")
        if not overwrite:
            raise OutputExistsError(f"{given} exists; pass overwrite=True (--overwrite) to replace it")
    directory = target.parent
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise OutputError(f"{given}: directory {directory} {what}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{given}: cannot write in directory {directory} (read-only or no permission)")
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(target.name.encode("utf-8", "surrogateescape")) > limit:
        raise OutputError(f"{given}: the file name is longer than the {limit} bytes the file system allows")
    return target


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write there: {_strerror(exc)}") from None


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError, TypeError):
        return False


def _temp_prefix(path):
    return f".{path.name[:_NAME_KEPT]}.{TEMP_MARK}-{_HOST}-"


def temp_path_for(path):
    """A new, empty temporary file beside `path` (same directory, so the final move is a rename),
    with the permissions a plain open() would give it. Stale temporaries of `path` left by dead
    processes are removed first."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    remove_stale_temps(path)
    # a signal raised between the file's creation and the caller's try/finally would leave it
    # behind: it waits until the name is known, and is raised here with the file removed
    with _signals.held():
        try:
            fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}-", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise OutputError(f"{path}: cannot create a file in {directory}: {_strerror(exc)}") from None
        try:
            os.close(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        except BaseException:
            os.unlink(tmp)
            raise
        result = Path(tmp)
    try:
        _signals.check()
    except BaseException:
        os.unlink(tmp)
        raise
    return result


def remove_stale_temps(path):
    """Remove the temporary files of output `path` whose writer, a process on this host, is gone;
    returns their paths. Temporaries of live processes and of other hosts are left alone."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    prefix = _temp_prefix(path)
    removed = []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return removed
    for name in names:
        pid = name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            os.unlink(directory / name)
            removed.append(directory / name)
        except OSError:
            pass
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # EPERM: it exists, owned by someone else
        return True
    return True


def publish(tmp, path, overwrite=True):
    """Flush `tmp` to disk and move it to `path`. Without `overwrite` an existing `path` is never
    replaced, not even one created while the file was being written. Refuses (Interrupted) once
    SIGINT or SIGTERM has arrived: an interrupted run never replaces a file."""
    tmp, path = Path(tmp), Path(path)
    _signals.refuse_if_pending()
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {_strerror(exc)}") from None
    if overwrite:
        _replace(tmp, path)
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
        _replace(tmp, path)
        return
    tmp.unlink()


def _replace(tmp, path):
    try:
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot replace it: {_strerror(exc)}") from None


@contextlib.contextmanager
def writing(path):
    """Turns an OSError raised while writing output `path` (a full disk, a quota, an I/O error)
    into one OutputError line."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {_strerror(exc)}") from None


@contextlib.contextmanager
def atomic_output(path, mode="w", overwrite=True, inputs=(), **open_kwargs):
    """`with atomic_output(path) as f:` writes `f` to a temporary file that becomes `path` when
    the block ends normally and is removed when it raises (or a signal stops it). `path` is
    checked with output_path first (a symbolic link is written through)."""
    path = output_path(path, overwrite=overwrite, inputs=inputs)
    tmp = temp_path_for(path)
    try:
        with writing(path):
            with open(tmp, mode, **open_kwargs) as f:
                yield f
        publish(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
