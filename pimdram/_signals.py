"""Stops a run cleanly on SIGINT and SIGTERM: at once where that is safe, at the next safe point
inside code that must not be interrupted half-way (an HDF5 write).

The CLI installs the handlers (`install`); the library never does on its own. A signal is
remembered as pending; outside `deferred()` sections the handler raises `Interrupted` straight
away, inside them it only records it and the section's end raises it. HDF5 is the reason:
an exception raised inside one of h5py's callbacks is printed and swallowed ("Exception
ignored"), so the run would go on and exit 0, and a failed HDF5 call can leave the library in a
state in which closing the file crashes. Whatever happens, `publish` (the rename that makes an
output appear) refuses to run once a signal is pending: an interrupted run never replaces a
file.
"""
import contextlib
import signal
import threading

from .errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_pending = None      # the first signal received, or None
_raised = False      # Interrupted has been raised for it (cleanup code must not see it twice)
_depth = 0           # nesting of deferred() sections on the main thread
_callback_files = set()   # source files of Python code that C calls back (never raise in there)


def _handler(signum, frame):
    global _pending
    if _pending is None:
        _pending = signum
    if _depth == 0 and not _in_callback(frame):
        _raise()


def called_back_from_c(module_file):
    """Declare the functions of `module_file` as called from C (h5py's file-object driver calls
    a stats file's GuardedFile, also outside any deferred() section: when an h5py object is freed
    as an exception unwinds). A signal arriving while one of them runs is only recorded, as
    inside deferred(): raised there, it became h5py's "Exception ignored" and left HDF5 with a
    file it crashed closing. The next safe point raises it."""
    _callback_files.add(module_file)


def _in_callback(frame):
    while frame is not None:
        if frame.f_code.co_filename in _callback_files:
            return True
        frame = frame.f_back
    return False


def _raise():
    global _raised
    _raised = True
    raise Interrupted(_pending)


def install():
    """Handle SIGINT and SIGTERM as described above (main thread only; a no-op elsewhere).
    Returns whether the handlers are installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    return True


def reset():
    """Forget a pending signal (tests; a long-lived host process that handled the interruption)."""
    global _pending, _raised
    _pending, _raised = None, False


def pending():
    """The number of the signal received, or None."""
    return _pending


def check():
    """Raise Interrupted if a signal arrived and nobody has been told yet (a safe point)."""
    if _pending is not None and not _raised and _depth == 0:
        _raise()


def refuse_if_pending():
    """Raise Interrupted if any signal arrived, told or not: the gate before publishing a file."""
    if _pending is not None:
        raise Interrupted(_pending)


@contextlib.contextmanager
def held():
    """Like deferred(), but its end does not raise: the caller raises (check()) once it can clean
    up what the section made (a temporary file whose name it now knows)."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


@contextlib.contextmanager
def deferred():
    """A section a signal must not break into: the signal is raised at its end. Python runs
    signal handlers on the main thread only, so on other threads this does nothing."""
    with held():
        yield
    if threading.current_thread() is threading.main_thread():
        check()
