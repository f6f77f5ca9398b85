"""DRAM energy from command counts and open-bank time: a DRAMPower-style IDD model (docs/energy.md).

No simulation happens here: the engine counts commands per channel and, per power node (rank or
pseudo-channel), the cycles during which at least one bank was open; this module turns those
counters into joules with the datasheet currents of `spec.power`:

    activate + precharge pair  (IDD0 * tRC - (IDD3N * tRAS + IDD2N * (tRC - tRAS))) * VDD
    read burst                 (IDD4R - IDD3N) * VDD * tBL
    write burst                (IDD4W - IDD3N) * VDD * tBL
    refresh                    (IDD5B - IDD3N) * VDD * tRFC      (per-bank: IDD5PB, tRFCpb)
    background                 IDD3N * VDD * active time + IDD2N * VDD * precharged time

each per device and multiplied by `devices_per_rank`. Currents are in mA, VDD in V, times
from cycles * tCK (ns): mA * V * ns = pJ. Results are in joules.
"""
import numpy as np

from .errors import ConfigError, PimdramError

COLUMNS = ("activate_j", "read_j", "write_j", "refresh_j", "background_j", "total_j")

_REQUIRED = ("vdd", "idd0", "idd2n", "idd3n", "idd4r", "idd4w", "idd5b", "devices_per_rank")
_PJ = 1e-12   # mA * V * ns


class EnergyInputError(PimdramError, ValueError):
    """The counters handed to the energy model do not fit the memory spec."""


def power_level(spec):
    """Index of the level whose nodes are the model's power nodes (each with its own IDD2N/IDD3N
    background): the scope of the all-bank refresh, else a `rank` or `pseudo_channel` level
    (the deepest present), else the channel."""
    bank = len(spec.levels) - 1
    candidates = [spec.refresh] + [spec.refresh_options.get(m) for m in ("all_bank",)]
    for ref in candidates:
        if ref is not None and ref.scope < bank:
            return ref.scope
    named = [i for i, name in enumerate(spec.levels) if name in ("rank", "pseudo_channel")]
    return max(named) if named else 0


def power_nodes_per_channel(spec):
    level = power_level(spec)
    return int(np.prod(spec.counts[1:level + 1], dtype=np.int64))


def command_energies(spec):
    """Energy in J of one command of each kind, for the whole rank (all devices): a dict with
    `activate` (the activate + precharge pair, per bank opened), `read`, `write`, `refresh`
    (all-bank), `refresh_per_bank`, and per-cycle background `active_cycle`, `precharged_cycle`."""
    p = spec.power
    missing = [k for k in _REQUIRED if k not in p]
    if missing:
        raise ConfigError(f"{spec.source or spec.name}: power: missing {', '.join(missing)} "
                          f"(the energy model needs {', '.join(_REQUIRED)})")
    t = spec.timing
    tck = spec.tck_ns
    vdd, devices = p["vdd"], p["devices_per_rank"]
    n_ras = t["nRAS"]
    n_rc = t.get("nRC", n_ras + t["nRP"])
    n_bl = t["nBL"]
    n_rfc = t.get("nRFC", 0)
    n_rfc_pb = t.get("nRFCpb", t.get("nRFCb", n_rfc))
    idd5pb = p.get("idd5pb", p["idd5b"])
    scale = vdd * tck * devices * _PJ
    act = (p["idd0"] * n_rc - (p["idd3n"] * n_ras + p["idd2n"] * (n_rc - n_ras))) * scale
    return {
        # inconsistent datasheet numbers can make the pair's excess current negative: no energy
        "activate": max(act, 0.0),
        "read": (p["idd4r"] - p["idd3n"]) * n_bl * scale,
        "write": (p["idd4w"] - p["idd3n"]) * n_bl * scale,
        "refresh": (p["idd5b"] - p["idd3n"]) * n_rfc * scale,
        "refresh_per_bank": (idd5pb - p["idd3n"]) * n_rfc_pb * scale,
        "active_cycle": p["idd3n"] * scale,
        "precharged_cycle": p["idd2n"] * scale,
    }


def _refresh_command_energy(spec, command, e):
    """J of one issue of refresh `command`: per bank, or one IDD5B refresh per power node it covers."""
    bank = len(spec.levels) - 1
    if command.scope == bank:
        return e["refresh_per_bank"]
    plevel = power_level(spec)
    nodes = int(np.prod(spec.counts[command.scope + 1:plevel + 1], dtype=np.int64)) if command.scope < plevel else 1
    return nodes * e["refresh"]


def static_power_w(spec):
    """Watts one channel draws with no access in flight, by the IDD model: precharge standby
    (IDD2N x VDD) of each power node, and the refresh that keeps its data (the controller's
    refresh command, once per node of its scope per refresh interval). NaN without currents.

    A system charges it over the whole run, busy or idle (docs/energy.md, "Static power"); the
    kernels' energies hold no background or refresh of their own, so nothing is counted twice."""
    try:
        e = command_energies(spec)
    except ConfigError:
        return float("nan")
    seconds_per_cycle = spec.tck_ns * 1e-9
    standby = power_nodes_per_channel(spec) * e["precharged_cycle"] / seconds_per_cycle
    ref = spec.refresh
    if ref is None:
        return standby
    command = spec.commands[ref.command]
    issues = int(np.prod(spec.counts[1:ref.scope + 1], dtype=np.int64))      # refresh nodes per channel
    return standby + issues * _refresh_command_energy(spec, command, e) / (ref.interval * seconds_per_cycle)


def column_or_row_energy(spec, command, e=None):
    """J of one issue of an activate (per bank it opens), read or write kind command, by the IDD
    model (`command_energies`); 0 for other kinds. For PIM energies stated relative to them."""
    e = command_energies(spec) if e is None else e
    if command.kind == "activate":
        return spec.banks_covered(command) * e["activate"]
    if command.kind in ("read", "read_precharge"):
        return e["read"]
    if command.kind in ("write", "write_precharge"):
        return e["write"]
    return 0.0


def dram_energy(spec, counts, active_cycles, cycles):
    """Energy per channel, in J, from counters.

    `counts[name]`: number of command `name` issued per channel (commands not given count 0);
    `active_cycles[ch]`: summed over the channel's power nodes (see `power_level`), the cycles
    during which at least one bank of the node was open; `cycles`: the run length. Returns
    {column: float64 array per channel} for `COLUMNS`. A spec without a `power:` section gives
    NaN throughout (no numbers rather than made-up ones).
    """
    n_ch = spec.n_channels
    names = spec.command_names
    unknown = [k for k in counts if k not in names]
    if unknown:
        raise EnergyInputError(f"energy: unknown command(s) {', '.join(map(str, unknown))} "
                               f"(commands: {', '.join(names)})")
    per_channel = {}
    for name in names:
        value = np.asarray(counts.get(name, np.zeros(n_ch)), dtype=np.float64)
        if value.shape != (n_ch,):
            raise EnergyInputError(f"energy: counts[{name!r}] has shape {value.shape}, "
                                   f"expected one value per channel ({n_ch},)")
        if (value < 0).any():
            raise EnergyInputError(f"energy: counts[{name!r}] has negative entries")
        per_channel[name] = value
    active = np.asarray(active_cycles, dtype=np.float64)
    if active.shape != (n_ch,):
        raise EnergyInputError(f"energy: active_cycles has shape {active.shape}, expected ({n_ch},)")
    if cycles < 0:
        raise EnergyInputError(f"energy: cycles must not be negative, got {cycles}")
    node_cycles = power_nodes_per_channel(spec) * float(cycles)
    if (active < 0).any() or (active > node_cycles).any():
        raise EnergyInputError(
            f"energy: active_cycles must lie in 0..{node_cycles:.0f} (power nodes per channel x "
            f"cycles), got {active.min():.0f}..{active.max():.0f}")

    if not spec.power:
        nan = np.full(n_ch, np.nan)
        return {c: nan.copy() for c in COLUMNS}

    e = command_energies(spec)
    zero = np.zeros(n_ch)
    activate, read, write, refresh = zero.copy(), zero.copy(), zero.copy(), zero.copy()
    for c in spec.commands:
        k = per_channel[c.name]
        if c.kind == "activate":
            # one pair per bank the command opens
            activate += k * spec.banks_covered(c) * e["activate"]
        elif c.kind in ("read", "read_precharge"):
            read += k * e["read"]           # the precharge half is carried by the activate
        elif c.kind in ("write", "write_precharge"):
            write += k * e["write"]
        elif c.kind == "refresh":
            # IDD5B is the current of one device refreshing all its banks: one per power node
            refresh += k * _refresh_command_energy(spec, c, e)
    background = active * e["active_cycle"] + (node_cycles - active) * e["precharged_cycle"]
    total = activate + read + write + refresh + background
    return {"activate_j": activate, "read_j": read, "write_j": write, "refresh_j": refresh,
            "background_j": background, "total_j": total}


def streaming_pj_per_byte(spec):
    """pJ per byte of a streamed read by the IDD model: a column read plus its row's activate
    shared by the row's columns; DRAM core only (no I/O, PHY or link). NaN without currents.
    The fallback figure of a device that names no memory energy of its own."""
    try:
        e = command_energies(spec)
    except ConfigError:
        return float("nan")
    return (e["read"] + e["activate"] / spec.columns) / spec.access_bytes * 1e12
