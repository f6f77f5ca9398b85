"""Writes the synthetic request traces used to compare pimdram with other simulators.

The three traces are those of the team's cross-simulator reference (seq_read, rand_read, mix_rw:
1M 64-byte requests in DRAMsim3 format, arrival cycle = line index); the generator is
deterministic, so the same N gives byte-identical files on any machine and DRAMsim3 or Ramulator
can replay exactly what pimdram replays.
"""
import random
from pathlib import Path

LINE = 64
LINES = (4 << 30) // LINE          # uniform over [0, 4 GiB)
TRACES = ("seq_read", "rand_read", "mix_rw")


def _seq_read(n):
    for i in range(n):
        yield i * LINE, False


def _rand_read(n):
    rng = random.Random(1)
    for _ in range(n):
        yield rng.randrange(LINES) * LINE, False


def _mix_rw(n):
    rng = random.Random(2)
    for _ in range(n):
        address = rng.randrange(LINES) * LINE
        yield address, rng.random() < 1.0 / 3.0


_GENERATORS = {"seq_read": _seq_read, "rand_read": _rand_read, "mix_rw": _mix_rw}


def write_synthetic_trace(name, path, n=1_000_000):
    """Write trace `name` (one of TRACES) with `n` requests to `path` in DRAMsim3 format."""
    gen = _GENERATORS[name]
    path = Path(path)
    with open(path, "w") as f:
        f.writelines(f"{hex(a)} {'WRITE' if w else 'READ'} {i}\n" for i, (a, w) in enumerate(gen(n)))
    return path


def synthetic_traces(directory, n=1_000_000):
    """Paths of the three traces in `directory`, written if missing (or of another length)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in TRACES:
        path = directory / f"{name}.dramsim3"
        if not path.exists() or _line_count(path) != n:
            write_synthetic_trace(name, path, n)
        out[name] = path
    return out


def _line_count(path):
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
