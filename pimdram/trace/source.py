"""Where a trace comes from: a regular file (read as often as needed), or standard input (`-`), a
pipe, a FIFO or a device, read exactly once.

The readers look at a trace's first bytes to tell its kind and format before they parse it. A
regular file can be opened again for that; a stream cannot, so `TraceSource` keeps the bytes it
looked at (`peek`) and hands them back first when the stream is read (`open`). A stream can be
read once: a second pass is an error, not an empty trace.
"""
import io
import os
import stat
import sys
from pathlib import Path

from ..errors import TraceError

STDIN = "-"
#: bytes `peek` may hold from a stream before the kind and format of a trace must be known
MAX_PEEK = 1 << 20


class TraceSource:
    """A trace's bytes: `name` for messages, `path` (None for stdin), `is_stream`, `size` (None
    for a stream), `peek(n)` and `open()`."""

    def __init__(self, path):
        if isinstance(path, TraceSource):
            raise TypeError("already a TraceSource")
        text = os.fspath(path)
        self._file = None
        self._head = b""
        self._opened = False
        if text == STDIN:
            self.path = None
            self.name = "<stdin>"
            self.is_stream = True
            self.size = None
            self._file = sys.stdin.buffer
            return
        self.path = Path(text)
        self.name = str(self.path)
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise TraceError(f"{self.name}: cannot open the trace: {exc.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            raise TraceError(f"{self.name}: is a directory, expected a trace file")
        self.is_stream = not stat.S_ISREG(st.st_mode)
        self.size = None if self.is_stream else st.st_size

    def __repr__(self):
        return f"TraceSource({self.name!r})"

    def __str__(self):
        return self.name

    def peek(self, n):
        """Up to `n` bytes from the start of the trace (fewer only at its end), without using
        them up."""
        if not self.is_stream:
            with self._open_file() as f:
                return f.read(n)
        if self._opened:
            raise TraceError(f"{self.name}: a stream can be read only once")
        if n > MAX_PEEK:
            n = MAX_PEEK
        if self._file is None:
            self._file = self._open_file()
        while len(self._head) < n:
            more = self._file.read(n - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:n]

    def open(self):
        """A binary file object reading the trace from its start. For a stream, only once."""
        if not self.is_stream:
            return self._open_file()
        if self._opened:
            raise TraceError(f"{self.name}: a stream (standard input, a pipe or a device) can be read only "
                             "once; save it to a file to read it again")
        self._opened = True
        if self._file is None:
            self._file = self._open_file()
        return _Prefixed(self._head, self._file)

    def _open_file(self):
        try:
            return open(self.path, "rb", buffering=0)
        except OSError as exc:
            raise TraceError(f"{self.name}: cannot open the trace: {exc.strerror}") from None


def trace_source(path):
    """`path` as a TraceSource (one already is returned as it is)."""
    return path if isinstance(path, TraceSource) else TraceSource(path)


class _Prefixed(io.RawIOBase):
    """The bytes `head`, then what `rest` (a binary file) still holds."""

    def __init__(self, head, rest):
        self._head = memoryview(head)
        self._rest = rest

    def readable(self):
        return True

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        if len(self._head):
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if hasattr(self._rest, "readinto"):
            return self._rest.readinto(view)
        data = self._rest.read(len(view))
        view[:len(data)] = data
        return len(data)

    def close(self):
        # standard input stays open for whoever else reads it; a pipe we opened is closed
        if self._rest is not sys.stdin.buffer:
            self._rest.close()
        super().close()
