"""PIM (and DRAM) commands of one channel over time, one lane per node a command acts on (the
channel for all-bank commands, a pseudo-channel for its buffer, a bank), from a stats file
written with --command-log."""
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, PimdramError
from .style import axes_or_new, scaled

#: colours by command kind (tab20 pairs: a second command of a kind takes the light one)
KIND_COLORS = {
    "activate": ("#2ca02c", "#98df8a"), "mac": ("#1f77b4", "#aec7e8"), "precharge": ("#ff7f0e", "#ffbb78"),
    "read": ("#9467bd", "#c5b0d5"), "write": ("#8c564b", "#c49c94"), "read_precharge": ("#9467bd", "#c5b0d5"),
    "write_precharge": ("#8c564b", "#c49c94"), "refresh": ("#7f7f7f", "#c7c7c7"),
    "buffer_write": ("#bcbd22", "#dbdb8d"), "buffer_read": ("#17becf", "#9edae5"), "move": ("#d62728", "#ff9896"),
    "unit_op": ("#e377c2", "#f7b6d2"),
}
_SHORT = {"pseudo_channel": "pc", "bank_group": "bg", "sid": "sid", "rank": "rank", "bank": "bank"}


def command_log(path, channel=None, window=None):
    """The command log of `path`, one channel (default: the first logged) within a time window
    (start_ns, end_ns; either None): (log columns, memory spec, channel, description)."""
    from ..check import spec_from_resolved
    from ..stats import open_stats, schema

    with open_stats(path) as sf:
        if schema.COMMAND_LOG not in sf.tables:
            raise FileFormatError(f"{path} has no command log; replay with --command-log to record one")
        spec = spec_from_resolved(sf.config)
        log = sf.table(schema.COMMAND_LOG)
        description = sf.attrs.get("description", "")
    channels = np.unique(log["channel"])
    if channel is None:
        if not len(channels):
            raise PimdramError(f"{path}: the command log is empty")
        channel = int(channels[0])
    elif channel not in channels:
        raise PimdramError(f"{path}: no command of channel {channel} in the log (logged: "
                           f"{', '.join(map(str, channels.tolist()))})")
    keep = log["channel"] == channel
    time_ns = log["cycle"] * spec.tck_ns
    if window is not None:
        start, end = window
        if start is not None:
            keep &= time_ns >= start
        if end is not None:
            keep &= time_ns <= end
    return {k: v[keep] for k, v in log.items()}, spec, channel, description


def lanes(log, levels, counts, deepest):
    """(lane of each command, lane labels): a command's lane is the node it acts on — its scope's
    node, or its ancestor at level `deepest` when its scope is below — in order: the channel,
    then each level's nodes in address order."""
    below = levels[1:levels.index(deepest) + 1]
    n = len(log["cycle"])
    depth = np.zeros(n, dtype=np.int64)          # how many levels below the channel a command names
    index = np.zeros(n, dtype=np.int64)          # its node among that level's nodes in the channel
    for d, (name, size) in enumerate(zip(below, counts[1:]), start=1):
        value = log[name].astype(np.int64)
        named = value >= 0
        index = np.where(named, index * size + value, index)
        depth = np.where(named, d, depth)
    keys = sorted(set(zip(depth.tolist(), index.tolist())))
    lane_of = {key: i for i, key in enumerate(keys)}
    labels = []
    for d, i in keys:
        if d == 0:
            labels.append("channel (all banks)")
            continue
        digits, rest = [], i
        for size in reversed(counts[1:d + 1]):
            digits.append(rest % size)
            rest //= size
        labels.append(" ".join(f"{_SHORT.get(name, name)}{v}" for name, v in zip(below[:d], reversed(digits))))
    return np.array([lane_of[key] for key in zip(depth.tolist(), index.tolist())], dtype=np.int64), labels


def timeline(stats, ax=None, channel=None, window=None, level=None, title=None):
    """Commands of one channel over time (`window`: (start_ns, end_ns), either None), each a tick
    in the lane of the node it acts on: the channel (all-bank commands), a pseudo-channel (its
    buffer's commands), a bank — down to `level` (default: the memory's deepest; commands below it
    go to their ancestor's lane). A colour per command kind. Returns the axes."""
    log, spec, channel, description = command_log(stats, channel, window)
    levels, counts = list(spec.levels), list(spec.counts)
    level = level or levels[-1]
    if level not in levels[1:]:
        raise PimdramError(f"level must be one of {', '.join(levels[1:])} (below the channel), got {level!r}")
    lane, labels = lanes(log, levels, counts, level)
    ax = axes_or_new(ax)
    times_s = log["cycle"] * spec.tck_ns * 1e-9
    factor, unit = scaled("s", float(times_s.max()) if len(times_s) else 1e-9)
    x = times_s / factor
    shades = {}
    for code in np.unique(log["command"]):
        command = spec.commands[int(code)]
        m = log["command"] == code
        pair = KIND_COLORS.get(command.kind, ("#000000", "#555555"))
        color = pair[min(shades.setdefault(command.kind, 0), 1)]
        shades[command.kind] += 1
        ax.vlines(x[m], lane[m] - 0.4, lane[m] + 0.4, colors=color, linewidth=1.0,
                  label=f"{command.name}, {command.kind} ({int(m.sum()):,})")
    ax.set_yticks(np.arange(len(labels)), labels, fontsize="small" if len(labels) <= 24 else "xx-small")
    ax.set_ylim(len(labels) - 0.5, -0.5)          # the channel on top
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel(f"node of channel {channel} the command acts on")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize="x-small", title="command, kind (count)", loc="upper left", bbox_to_anchor=(1.01, 1))
    if window is not None:
        ax.set_xlim(*(None if w is None else w * 1e-9 / factor for w in window))
    if title is None:
        lo, hi = ax.get_xlim() if window is not None else (x.min(), x.max()) if len(x) else (0, 0)
        shown = f"{max(lo, 0):,.4g}–{hi:,.4g} {unit}" + ("" if len(x) else ", no commands in the window")
        title = f"Commands of channel {channel}, {shown}\n{Path(stats).name}" + (f": {description}" if description else "")
    ax.set_title(title, fontsize="medium")
    return ax
