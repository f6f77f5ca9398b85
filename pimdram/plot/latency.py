"""Latency CDFs of request replays: the fraction of accesses served within each latency."""
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .style import _PALETTE, axes_or_new

KINDS = ("read", "write")


def latency_cdf(path, kind):
    """(latency in ns, fraction of `kind` accesses at most that latency) as the points of a
    polyline, and the memory's name, from the latency histogram of a request replay's stats file.
    Each bin [start, end) rises from the fraction before it at `start` to the fraction after it at
    `end - 1` (a vertical step for one-cycle bins)."""
    from ..stats import open_stats, schema

    with open_stats(path) as sf:
        if schema.LATENCY_HISTOGRAM not in sf.tables:
            raise FileFormatError(f"{path} has no latency histogram: latency plots request replays "
                                  "(pimdram replay TRACE --memory ...)")
        h = sf.table(schema.LATENCY_HISTOGRAM)
        names = sf.table_attrs(schema.LATENCY_HISTOGRAM).get("kind-names", list(KINDS))
        tck = sf.summary()["tck_ns"]
        config = sf.config if isinstance(sf.config, dict) else {}
    code = names.index(kind)
    m = h["kind"] == code
    if not m.any():
        return np.zeros(0), np.zeros(0), config.get("name", "")
    starts, ends, counts = h["bin_start"][m], h["bin_end"][m], h["count"][m]
    # the same bin from several channels: add them up
    bins, where = np.unique(np.stack([starts, ends], axis=1), axis=0, return_inverse=True)
    total_per_bin = np.bincount(where.ravel(), weights=counts, minlength=len(bins))
    cumulative = np.cumsum(total_per_bin) / total_per_bin.sum()
    before = np.concatenate([[0.0], cumulative[:-1]])
    x = np.stack([bins[:, 0], bins[:, 1] - 1], axis=1).ravel() * tck
    y = np.stack([before, cumulative], axis=1).ravel()
    return x, y, config.get("name", "")


def latency(stats, ax=None, kinds=KINDS, title=None):
    """The CDF of access latency (ns) of each request-replay stats file (a path or a list), one line
    per file and kind (read solid, write dashed; a colour per file). Returns the axes."""
    paths = [stats] if isinstance(stats, (str, Path)) else list(stats)
    ax = axes_or_new(ax)
    memories = []
    for i, path in enumerate(paths):
        for kind in kinds:
            x, y, memory = latency_cdf(path, kind)
            if not len(x):
                continue
            ax.plot(x, y, color=_PALETTE[i % len(_PALETTE)], linestyle="-" if kind == "read" else "--",
                    label=f"{Path(path).name} ({memory}) {kind}s")
            memories.append(memory)
    ax.set_xlabel("access latency (ns)")
    ax.set_ylabel("fraction of accesses ≤ latency")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title is None:
        title = ("Access latency CDF (acceptance into the queue to the last data beat)\n"
                 + ", ".join(Path(p).name for p in paths))
    ax.set_title(title, fontsize="medium")
    return ax
