"""The file object a stats file is written through (h5py's `fileobj` driver): it never lets HDF5
see a failed write.

HDF5 does not recover from a failed write: the failure surfaces in an object's deallocation,
where h5py prints and swallows it, and closing the file afterwards crashes the process (seen on
a full disk with a command log). So the first OSError on a write (ENOSPC, EDQUOT, EIO) is kept
in `error`, and from then on writes go to memory instead of the disk, where later reads find
them: HDF5 sees a file that works and closes cleanly. The writer looks at `error` after every
step and stops at the first one it sees, so what is kept in memory is bounded by one step's
writes (a chunk of the command log, HDF5's caches at close); the temporary file is then removed.

HDF5 calls these methods from C, also outside the writer's own calls (an h5py object freed as an
exception unwinds): a signal arriving inside them is recorded, not raised there
(pimdram._signals.called_back_from_c); the writer raises it at its next step.
"""
import os

from .. import _signals

_signals.called_back_from_c(__file__)


class GuardedFile:
    """A binary file opened for reading and writing, with writes kept in memory after the first
    failure (see the module docstring)."""

    def __init__(self, path):
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        self._pos = 0
        self._size = os.fstat(self._fd).st_size
        self.error = None          # the first OSError a write or truncate raised
        self._overlay = []         # (offset, bytes) written after the failure, in order

    # -- the file-object interface h5py's fileobj driver uses -----------------------------------

    def seek(self, offset, whence=os.SEEK_SET):
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def tell(self):
        return self._pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        n = min(len(view), max(0, self._size - self._pos))
        got = 0
        while got < n:
            chunk = os.preadv(self._fd, [view[got:n]], self._pos + got)
            if chunk == 0:
                break
            got += chunk
        view[got:n] = bytes(n - got)           # a hole (or a write that went to memory)
        start, stop = self._pos, self._pos + n
        for offset, data in self._overlay:
            lo, hi = max(start, offset), min(stop, offset + len(data))
            if lo < hi:
                view[lo - start:hi - start] = data[lo - offset:hi - offset]
        self._pos += n
        return n

    def read(self, size=-1):
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        buffer = bytearray(size)
        n = self.readinto(buffer)
        return bytes(buffer[:n])

    def write(self, data):
        view = memoryview(data).cast("B")
        n = len(view)
        if self.error is None:
            try:
                done = 0
                while done < n:
                    done += os.pwrite(self._fd, view[done:], self._pos + done)
            except OSError as exc:
                self.error = exc
        if self.error is not None:
            self._overlay.append((self._pos, bytes(view)))
        self._pos += n
        self._size = max(self._size, self._pos)
        return n

    def truncate(self, size=None):
        size = self._pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as exc:
                self.error = exc
        self._size = size
        if self.error is not None:
            self._overlay = [(o, d[:max(0, size - o)]) for o, d in self._overlay if o < size]
        return size

    def flush(self):
        pass

    # -- ours ------------------------------------------------------------------------------------

    def fsync(self):
        """Flush to disk; an error is kept in `error` like a failed write."""
        if self.error is None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self.error = exc

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._overlay = []

    @property
    def closed(self):
        return self._fd < 0
