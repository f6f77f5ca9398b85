"""Request-trace front ends: stream DRAMsim3, Ramulator 2 and pimdram binary traces as numpy chunks.

The formats are specified in docs/request-trace-formats.md. Text is read in blocks of bytes and
parsed by the Cython module pimdram._parse without the GIL; the binary format is read a chunk of
fixed-size records at a time. Memory use is bounded by the block and chunk sizes, never by the
length of the trace.
"""
import hashlib
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import _parse
from .._atomic import output_path, publish, temp_path_for, writing
from ..errors import FileFormatError, TraceError, VersionTooNewError, VersionTooOldError
from .source import TraceSource, trace_source

__all__ = [
    "FORMATS",
    "BINARY_FORMAT_NAME",
    "BINARY_FORMAT_VERSION",
    "RequestChunk",
    "RequestTrace",
    "open_request_trace",
    "detect_format",
    "write_binary_trace",
    "convert_request_trace",
]

FORMATS = ("dramsim3", "ramulator", "binary")

DEFAULT_CHUNK_SIZE = 1 << 20
DEFAULT_BLOCK_SIZE = 8 << 20
#: the first block read of a text trace: a replay's first chunk (8,192 requests, about 200 KB of
#: text) is ready after reading this much, not a whole block (and its pages are touched
#: first: several milliseconds for 2 MiB); the later blocks have the block size
_FIRST_BLOCK = 256 << 10
_HASH_BLOCK = 8 << 20
#: the longest text line (a request line is a few dozen bytes; /dev/zero or a binary file
#: given as text would otherwise grow the read block without limit)
MAX_LINE_BYTES = 1 << 20

# --- the compact binary format (docs/request-trace-formats.md, "pimdram binary request trace") ---
BINARY_FORMAT_NAME = "pimdram.request-trace"
BINARY_FORMAT_VERSION = (1, 0)
# Eight bytes no text file starts with: 0x89 is not ASCII (nor a UTF-8 lead byte), and the
# newline catches a file mangled by text-mode newline translation.
BINARY_MAGIC = b"\x89PIMREQ\n"
# magic, version major, version minor, header size, record size, header flags, record count
_HEADER = struct.Struct("<8sHHIIIQ")
_RECORD_SIZE = 24
_RECORD_FIELDS = {
    "names": ["arrival", "address", "size", "flags"],
    "formats": ["<i8", "<u8", "<u4", "u1"],
    "offsets": [0, 8, 16, 20],
}
_WRITE_FLAG = 0x01

_INT64_MAX = np.iinfo(np.int64).max
_UINT32_MAX = np.iinfo(np.uint32).max

_TEXT_FORMAT_CODES = {
    "dramsim3": _parse.TextFormat.TEXT_DRAMSIM3,
    "ramulator": _parse.TextFormat.TEXT_RAMULATOR,
}
_EXAMPLE_LINE = {"dramsim3": "'0x1f40 READ 12'", "ramulator": "'LD 0x1f40' or 'LD 0x1f40 12'"}
_SEPARATORS = b" \t\r\v\f"


class RequestChunk(NamedTuple):
    """A run of consecutive requests of a trace, as equal-length numpy columns."""

    arrival: np.ndarray   # int64: memory-clock cycle at which the request is offered; -1 = not given
    address: np.ndarray   # uint64: byte address
    is_write: np.ndarray  # uint8: 1 for a write/store, 0 for a read/load
    size: np.ndarray      # uint32: bytes; 0 = one access of the memory's access size

    @property
    def n_requests(self):
        return len(self.address)

    @classmethod
    def concatenate(cls, chunks):
        """One chunk holding the requests of all the given chunks, in order."""
        chunks = list(chunks)
        if not chunks:
            return cls(np.empty(0, np.int64), np.empty(0, np.uint64), np.empty(0, np.uint8),
                       np.empty(0, np.uint32))
        return cls(*(np.concatenate(columns) for columns in zip(*chunks)))


class _BinaryHeader(NamedTuple):
    version: tuple
    header_size: int
    record_size: int
    flags: int
    record_count: int


class RequestTrace:
    """A request trace. Iterating reads it from the start, yielding RequestChunks of at most
    chunk_size requests; each pass re-reads the file, and a complete pass also computes the
    file's sha256 on the way. A trace from standard input, a pipe or a device (a stream) can be
    iterated once; its `size_bytes` is None."""

    def __init__(self, source, format, chunk_size, block_size, binary_header=None, first_chunk_size=None):
        self.source = trace_source(source)
        self.path = self.source.path if self.source.path is not None else Path(self.source.name)
        self.format = format
        self.chunk_size = chunk_size
        self.first_chunk_size = min(first_chunk_size or chunk_size, chunk_size)
        self.size_bytes = self.source.size
        self.bytes_read = 0
        self._block_size = max(block_size, 2)
        self._binary_header = binary_header
        self._sha256 = None

    def __repr__(self):
        return f"RequestTrace({self.source.name!r}, format={self.format!r})"

    def sha256(self):
        """Hex sha256 digest of the file's bytes (from the last complete pass, else read now;
        a stream's is known only after its one pass)."""
        if self._sha256 is None:
            if self.source.is_stream:
                raise TraceError(f"{self.source.name}: the sha256 of a stream is known only once it was read")
            digest = hashlib.sha256()
            with self.source.open() as f:
                for block in iter(lambda: f.read(_HASH_BLOCK), b""):
                    digest.update(block)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def __iter__(self):
        if self.format == "binary":
            return self._iter_binary()
        return self._iter_text()

    def read_all(self):
        """All requests as one RequestChunk (memory grows with the trace: for small traces)."""
        return RequestChunk.concatenate(self)

    # --- text ---------------------------------------------------------------------------------

    def _iter_text(self):
        parser = _parse.TextParser(_TEXT_FORMAT_CODES[self.format])
        digest = hashlib.sha256()
        block = bytearray(min(self._block_size, _FIRST_BLOCK))
        filled = 0          # bytes of block holding file data
        n_requests = 0
        limit = self.first_chunk_size
        columns = _empty_columns(limit)
        n = 0               # requests in columns
        self.bytes_read = 0
        # The sha256 of each block runs on a second thread while the block is parsed (both
        # release the GIL); the block is not touched again until its hash is done.
        with self.source.open() as f, ThreadPoolExecutor(1) as hasher:
            at_eof = False
            while not at_eof:
                if filled == len(block):
                    # One line longer than the block: grow the block to hold it (lines are at
                    # most MAX_LINE_BYTES, checked below).
                    block = block + bytearray(len(block))
                with memoryview(block) as view:
                    got = f.readinto(view[filled:])
                    hashed = hasher.submit(digest.update, view[filled:filled + got])
                at_eof = got == 0
                filled += got
                self.bytes_read += got
                # Parse whole lines only; the partial last line waits for the next block.
                end = filled if at_eof else block.rfind(b"\n", 0, filled) + 1
                pos = 0
                while pos < end:
                    pos, written = parser.parse(block, pos, end, columns[0], columns[1],
                                                columns[2], n)
                    n += written
                    if parser.error:
                        hashed.result()
                        raise self._text_error(parser, block, filled)
                    if n == limit:
                        yield RequestChunk(*columns)
                        n_requests += n
                        limit = min(2 * limit, self.chunk_size)
                        columns = _empty_columns(limit)
                        n = 0
                hashed.result()
                carry = filled - end
                if carry > MAX_LINE_BYTES:
                    raise TraceError(f"{self.source.name}:{parser.line}: line longer than {MAX_LINE_BYTES} bytes "
                                     f"(no newline), expected request lines like {_EXAMPLE_LINE[self.format]}")
                block[:carry] = block[end:filled]
                filled = carry
                if len(block) < self._block_size:
                    # after the small first block, larger ones up to the block size (its carried
                    # head copied over), so that the first chunks wait for no large one
                    grown = bytearray(min(4 * len(block), self._block_size))
                    grown[:carry] = block[:carry]
                    block = grown
        if n:
            yield RequestChunk(*(column[:n] for column in columns))
            n_requests += n
        if n_requests == 0:
            raise _empty_trace_error(self.source.name)
        self._sha256 = digest.hexdigest()

    def _text_error(self, parser, block, filled):
        """The TraceError for the parser's error code: the one place codes become messages."""
        line_start = parser.error_line_start
        line_end = block.find(b"\n", line_start, filled)
        if line_end < 0:
            line_end = filled
        token_start = parser.error_token
        token_end = token_start
        while token_end < line_end and block[token_end] not in _SEPARATORS:
            token_end += 1
        line = _shorten(bytes(block[line_start:line_end]).decode("utf-8", "replace").strip())
        token = _shorten(bytes(block[token_start:token_end]).decode("utf-8", "replace"))
        what, expected = _describe_text_error(parser, self.format, line, token)
        return TraceError(f"{self.source.name}:{parser.line}: {what}, expected {expected}")

    # --- binary -------------------------------------------------------------------------------

    def _iter_binary(self):
        header = self._binary_header
        records = np.dtype(dict(_RECORD_FIELDS, itemsize=header.record_size))
        digest = hashlib.sha256()
        arrival_order = _ArrivalOrder()
        self.bytes_read = 0
        # As for text, each chunk's bytes are hashed on a second thread while they are decoded.
        with self.source.open() as f, ThreadPoolExecutor(1) as hasher:
            head = _read_exactly(f, header.header_size)
            digest.update(head)
            self.bytes_read += len(head)
            buffer = bytearray(min(self.chunk_size, header.record_count) * header.record_size)
            first = 0
            limit = self.first_chunk_size      # doubling up to chunk_size
            while first < header.record_count:
                count = min(limit, header.record_count - first)
                limit = min(2 * limit, self.chunk_size)
                n_bytes = count * header.record_size
                with memoryview(buffer) as view:
                    got = _read_fully(f, view[:n_bytes])
                    hashed = hasher.submit(digest.update, view[:got])
                self.bytes_read += got
                if got < n_bytes:
                    raise FileFormatError(
                        f"{self.source.name}: file ends inside record {first + got // header.record_size}"
                        f" (cut short, or it shrank while being read), expected {header.record_count} records")
                fields = np.frombuffer(buffer, dtype=records, count=count)
                chunk = RequestChunk(
                    fields["arrival"].astype(np.int64),
                    fields["address"].astype(np.uint64),
                    (fields["flags"] & _WRITE_FLAG).astype(np.uint8),
                    fields["size"].astype(np.uint32),
                )
                problem = arrival_order.check(chunk.arrival)
                if problem is not None:
                    index, what, expected = problem
                    record = first + index
                    offset = header.header_size + record * header.record_size
                    raise TraceError(f"{self.source.name}: record {record} (byte offset {offset}): {what}, "
                                     f"expected {expected}")
                hashed.result()
                yield chunk
                first += count
            extra = 0
            for block in iter(lambda: f.read(_HASH_BLOCK), b""):
                digest.update(block)
                extra += len(block)
            self.bytes_read += extra
            if extra:
                raise FileFormatError(f"{self.source.name}: {extra} bytes after the {header.record_count} records its "
                                      "header announces, expected nothing (a stream holding more than one trace?)")
        self._sha256 = digest.hexdigest()


def open_request_trace(path, format="auto", chunk_size=DEFAULT_CHUNK_SIZE, *,
                       block_size=DEFAULT_BLOCK_SIZE, first_chunk_size=None):
    """Open a request trace for streaming: a RequestTrace to iterate for RequestChunks.

    format is "auto" (binary by its magic bytes, else sniffed from the first request line),
    "dramsim3", "ramulator" or "binary". chunk_size is the most requests per chunk;
    first_chunk_size, if given, the most in the first one, doubling from chunk to chunk up to
    chunk_size (a consumer that works while the next chunks are read starts sooner); block_size the bytes of text read and parsed at a time (a
    longer line grows the block).
    The binary header is checked here; text lines are checked as they are read.
    """
    if format != "auto" and format not in FORMATS:
        raise TraceError(f"unknown request-trace format {format!r}, expected auto or one of "
                         f"{', '.join(FORMATS)}")
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, not {chunk_size!r}")
    if int(block_size) != block_size or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, not {block_size!r}")
    if first_chunk_size is not None and (int(first_chunk_size) != first_chunk_size or first_chunk_size < 1):
        raise ValueError(f"first_chunk_size must be a positive integer, not {first_chunk_size!r}")
    source = trace_source(path)
    magic = _read_magic(source)
    if format == "auto":
        format = "binary" if magic == BINARY_MAGIC else _sniff_text_format(source)
    header = None
    if format == "binary":
        header = _read_binary_header(source)
    elif magic == BINARY_MAGIC:
        raise FileFormatError(f"{source}: is a pimdram binary request trace, not {format} text; "
                              f"expected format 'binary' or 'auto'")
    return RequestTrace(source, format, int(chunk_size), int(block_size), header,
                        None if first_chunk_size is None else int(first_chunk_size))


def detect_format(path):
    """The format of a request trace ("dramsim3", "ramulator" or "binary")."""
    source = trace_source(path)
    if _read_magic(source) == BINARY_MAGIC:
        return "binary"
    return _sniff_text_format(source)


def write_binary_trace(path, arrival, address, is_write, size=None):
    """Write requests given as columns to a pimdram binary request trace; returns their number.

    arrival is -1 for every request (no arrival cycles) or non-negative and non-decreasing;
    size defaults to 0 (one access). The file appears under its name only once complete.
    """
    with _BinaryTraceWriter(path) as writer:
        writer.append(arrival, address, is_write, size)
    return writer.n_requests


def convert_request_trace(src, dst, format="auto"):
    """Convert a request trace (any readable format) to a pimdram binary trace, streaming;
    returns the number of requests written."""
    dst = Path(dst)
    if str(src) != "-" and dst.exists() and Path(src).exists() and os.path.samefile(src, dst):
        raise TraceError(f"{dst}: converting a trace onto itself, expected a different output path")
    trace = open_request_trace(src, format)
    with _BinaryTraceWriter(dst, inputs=[src] if str(src) != "-" else []) as writer:
        for chunk in trace:
            writer.append(*chunk)
    return writer.n_requests


# --- helpers ------------------------------------------------------------------------------------


def _empty_columns(n):
    return (np.empty(n, np.int64), np.empty(n, np.uint64), np.empty(n, np.uint8),
            np.zeros(n, np.uint32))


def _empty_trace_error(path):
    return TraceError(f"{path}: the trace holds no requests, expected at least one request")


def _shorten(text, limit=60):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _read_exactly(f, n):
    buffer = bytearray(n)
    got = _read_fully(f, memoryview(buffer))
    return bytes(buffer[:got])


def _read_fully(f, view):
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _read_magic(source):
    try:
        return source.peek(len(BINARY_MAGIC))
    except OSError as e:
        raise TraceError(f"{source}: cannot read the request trace: {e.strerror}") from None


#: bytes looked at to tell a text trace's format (leading comments included)
_SNIFF_BYTES = 1 << 20
_SNIFF_QUICK = 1 << 16


def _sniff_text_format(source):
    """The text format of the first line that is neither blank nor a comment (within the first
    _SNIFF_BYTES of the trace). The first _SNIFF_QUICK bytes are looked at first: they hold the
    first request line of nearly every trace, and reading and splitting a whole _SNIFF_BYTES
    costs milliseconds of every replay."""
    head = source.peek(_SNIFF_QUICK)
    if len(head) == _SNIFF_QUICK:
        found = _first_line_format(source, head, False)
        if found is not None:
            return found
        head = source.peek(_SNIFF_BYTES)
    complete = len(head) < _SNIFF_BYTES
    found = _first_line_format(source, head, complete)
    if found is not None:
        return found
    if not complete:
        if head.find(b"\n") < 0:
            raise TraceError(f"{source}:1: line longer than {MAX_LINE_BYTES} bytes (no newline), expected "
                             "request lines like '0x1f40 READ 12' or 'LD 0x1f40'")
        raise TraceError(f"{source}: no request in the first {_SNIFF_BYTES} bytes, expected request lines "
                         "after at most that much of comments")
    raise _empty_trace_error(source)


def _first_line_format(source, head, complete):
    """The format of the first request line in `head` (the trace's first bytes; `complete`: all
    of it, else its cut last line is not looked at), None when it holds none; a TraceError for a
    first request line of neither format."""
    pos = number = 0
    while True:
        end = head.find(b"\n", pos)
        if end < 0:
            if not complete:
                return None
            end = len(head)
        number += 1
        raw = head[pos:end]
        tokens = raw.split()
        if tokens and not tokens[0].startswith(b"#"):
            first = tokens[0].upper()
            if first in (b"LD", b"ST", b"R", b"W"):
                return "ramulator"
            if len(tokens) >= 2 and tokens[1].upper() in (b"READ", b"WRITE", b"RD", b"WR"):
                return "dramsim3"
            line = _shorten(raw.decode("utf-8", "replace").strip())
            raise TraceError(
                f"{source}:{number}: cannot tell the request-trace format from {line!r}, expected a "
                f"DRAMsim3 line like '0x1f40 READ 12', a Ramulator 2 line like 'LD 0x1f40', "
                f"or a pimdram binary trace")
        if end >= len(head):
            return None
        pos = end + 1


def _describe_text_error(parser, format, line, token):
    """(what was wrong, what was expected) for a text parser's error code."""
    codes = _parse.ParseErrorCode
    code = parser.error
    example = _EXAMPLE_LINE[format]
    if code == codes.MISSING_ADDRESS:
        return f"{line!r} has no address", f"a byte address after the operation, as in {example}"
    if code == codes.BAD_ADDRESS:
        if format == "dramsim3":
            return (f"address {token!r} is not a hexadecimal number",
                    f"a byte address in hex (with or without 0x), as in {example}")
        return (f"address {token!r} is not a number",
                "a byte address in hex with 0x (0x1f40) or in decimal (8000)")
    if code == codes.ADDRESS_TOO_LARGE:
        return f"address {token} does not fit in 64 bits", "a byte address below 2**64"
    if code == codes.MISSING_OPERATION:
        return f"{line!r} has no operation", f"READ or WRITE after the address, as in {example}"
    if code == codes.BAD_OPERATION:
        if format == "dramsim3":
            return f"unknown operation {token!r}", "READ or WRITE (or RD, WR; any case)"
        return f"unknown operation {token!r}", f"LD or ST, as in {example}"
    if code == codes.VECTOR_ADDRESS_TRACE:
        return (f"{token!r} starts a line of Ramulator 2's ReadWriteTrace, whose DRAM address "
                "vectors carry no byte address and are not supported",
                f"LD or ST with a byte address, as in {example}")
    if code == codes.MISSING_ARRIVAL:
        return f"{line!r} has no arrival cycle", f"a decimal arrival cycle last, as in {example}"
    if code == codes.BAD_ARRIVAL:
        return (f"arrival cycle {token!r} is not a non-negative decimal integer",
                f"a cycle number, as in {example}")
    if code == codes.ARRIVAL_TOO_LARGE:
        return (f"arrival cycle {token} is beyond the latest cycle the simulator counts",
                "a cycle of at most 2**60")
    if code == codes.ARRIVAL_DECREASES:
        return (f"arrival cycle {token} is earlier than the previous request's "
                f"{parser.last_arrival}",
                "non-decreasing arrival cycles (requests are offered in file order)")
    if code == codes.ARRIVAL_NOW_MISSING:
        return (f"{line!r} has no arrival cycle but the first request "
                f"(line {parser.arrival_decided_on}) has one",
                "an arrival cycle on every request or on none")
    if code == codes.ARRIVAL_NOW_GIVEN:
        return (f"{line!r} has an arrival cycle but the first request "
                f"(line {parser.arrival_decided_on}) has none",
                "an arrival cycle on every request or on none")
    if code == codes.TRAILING_TEXT:
        return f"unexpected {token!r} after the last field", f"the end of the line, as in {example}"
    raise AssertionError(f"text parser returned unknown error code {code}")


class _ArrivalOrder:
    """Checks the arrival rule across chunks: all -1 (not given), or all >= 0 and non-decreasing;
    the first request decides which."""

    def __init__(self):
        self.given = None
        self.last = -1

    def check(self, arrival):
        """None if the chunk follows the rule (and remember it), else (index, what, expected)."""
        if len(arrival) == 0:
            return None
        if self.given is None:
            self.given = bool(arrival[0] != -1)
        if not self.given:
            bad = np.flatnonzero(arrival != -1)
            if len(bad):
                i = int(bad[0])
                return (i, f"arrival cycle {arrival[i]} given but the first request has none (-1)",
                        "an arrival cycle on every request or on none")
            return None
        bad = np.flatnonzero(arrival > _parse.MAX_ARRIVAL_CYCLE)
        if len(bad):
            i = int(bad[0])
            return (i, f"arrival cycle {arrival[i]} is beyond the latest cycle the simulator counts",
                    "a cycle of at most 2**60")
        bad = np.flatnonzero(arrival < 0)
        if len(bad):
            i = int(bad[0])
            return (i, f"arrival cycle {arrival[i]} is negative but the first request has one",
                    "an arrival cycle >= 0 on every request or -1 on every request")
        previous = np.empty_like(arrival)
        previous[0] = self.last
        previous[1:] = arrival[:-1]
        bad = np.flatnonzero(arrival < previous)
        if len(bad):
            i = int(bad[0])
            return (i, f"arrival cycle {arrival[i]} is earlier than the previous request's "
                       f"{previous[i]}", "non-decreasing arrival cycles")
        self.last = int(arrival[-1])
        return None


def _read_binary_header(source):
    path = source
    raw = source.peek(_HEADER.size)
    if raw[:len(BINARY_MAGIC)] != BINARY_MAGIC:
        raise FileFormatError(f"{path}: not a pimdram binary request trace (starts with "
                              f"{raw[:len(BINARY_MAGIC)]!r}), expected magic bytes {BINARY_MAGIC!r}")
    if len(raw) < _HEADER.size:
        raise FileFormatError(f"{path}: binary request-trace header cut short at {len(raw)} bytes, "
                              f"expected {_HEADER.size}")
    _, major, minor, header_size, record_size, flags, record_count = _HEADER.unpack(raw)
    known_major = BINARY_FORMAT_VERSION[0]
    if major > known_major:
        raise VersionTooNewError(
            f"{path}: {BINARY_FORMAT_NAME} version {major}.{minor} is newer than this pimdram "
            f"reads ({known_major}.x); upgrade pimdram")
    if major < known_major:
        raise VersionTooOldError(
            f"{path}: {BINARY_FORMAT_NAME} version {major}.{minor} is older than this pimdram "
            f"reads ({known_major}.x); convert it with an older pimdram to text first")
    if header_size < _HEADER.size or record_size < _RECORD_SIZE:
        raise FileFormatError(
            f"{path}: corrupt {BINARY_FORMAT_NAME} header (header size {header_size}, record size "
            f"{record_size}), expected at least {_HEADER.size} and {_RECORD_SIZE} bytes")
    expected_bytes = header_size + record_count * record_size
    actual_bytes = source.size if source.size is not None else expected_bytes    # a stream: checked as read
    if actual_bytes != expected_bytes:
        raise FileFormatError(
            f"{path}: file has {actual_bytes} bytes but its header announces {record_count} records "
            f"({expected_bytes} bytes), expected a complete file (was it cut short?)")
    if record_count == 0:
        raise _empty_trace_error(path)
    return _BinaryHeader((major, minor), header_size, record_size, flags, record_count)


def _integer_column(name, values, n, low, high, dtype):
    """values as a 1-D array of dtype, checked to be integers in [low, high], of length n."""
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != n:
        raise TraceError(f"{name} has shape {array.shape}, expected one value per request ({n})")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if n and not np.issubdtype(array.dtype, np.integer):
        raise TraceError(f"{name} has dtype {array.dtype}, expected integers")
    if n and (array.min() < low or array.max() > high):
        bad = np.flatnonzero((array < low) | (array > high))[0]
        raise TraceError(f"{name}[{bad}] = {array[bad]} is out of range, expected {low}..{high}")
    return array.astype(dtype, copy=False)


class _BinaryTraceWriter:
    """Streams requests into a pimdram binary trace: written to a temporary name, renamed into
    place by a successful close (a failed write leaves no file under the final name)."""

    def __init__(self, path, inputs=()):
        self.path = output_path(path, overwrite=True, inputs=inputs)
        self.n_requests = 0
        self._arrival_order = _ArrivalOrder()
        self._tmp = temp_path_for(self.path)
        try:
            with writing(self.path):
                self._file = open(self._tmp, "wb")
                self._file.write(self._header(0))
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._abort()

    @staticmethod
    def _header(record_count):
        return _HEADER.pack(BINARY_MAGIC, *BINARY_FORMAT_VERSION, _HEADER.size, _RECORD_SIZE, 0,
                            record_count)

    def append(self, arrival, address, is_write, size=None):
        n = len(np.asarray(address))
        address = _integer_column("address", address, n, 0, np.iinfo(np.uint64).max, np.uint64)
        arrival = _integer_column("arrival", arrival, n, -1, _INT64_MAX, np.int64)
        is_write = _integer_column("is_write", is_write, n, 0, 1, np.uint8)
        size = (np.zeros(n, np.uint32) if size is None
                else _integer_column("size", size, n, 0, _UINT32_MAX, np.uint32))
        problem = self._arrival_order.check(arrival)
        if problem is not None:
            index, what, expected = problem
            raise TraceError(f"{self.path}: request {self.n_requests + index}: {what}, "
                             f"expected {expected}")
        records = np.zeros(n, np.dtype(dict(_RECORD_FIELDS, itemsize=_RECORD_SIZE)))
        records["arrival"] = arrival
        records["address"] = address
        records["size"] = size
        records["flags"] = is_write * _WRITE_FLAG
        with writing(self.path):
            self._file.write(records.tobytes())
        self.n_requests += n

    def close(self):
        if self.n_requests == 0:
            self._abort()
            raise _empty_trace_error(self.path)
        try:
            with writing(self.path):
                self._file.seek(0)
                self._file.write(self._header(self.n_requests))
                self._file.close()
            publish(self._tmp, self.path)
        finally:
            self._file.close()
            self._tmp.unlink(missing_ok=True)

    def _abort(self):
        try:
            self._file.close()
        except OSError:         # a full disk fails the final flush too; the file goes anyway
            pass
        self._tmp.unlink(missing_ok=True)
