"""Imports a DRAMsim3 .ini configuration as a pimdram memory config (raw YAML data).

The translation follows what DRAMsim3 (2021 master) does with the file, not what its keys seem to
say: its ini reader (inih: case-insensitive keys, `;` comments, `strtol`/`strtod` prefixes), the
defaults of its configuration.cc, its derived sizes (ranks from channel_size, columns per
protocol), the constraint table of its timing.cc, its controller (transaction queues in front of
per-bank command queues, per-bank first-ready in round-robin, precharge after 4 hits, write drain
when the buffer is full or holds more than 8 writes while the command queues are empty) and its
refresh policies. Keys pimdram cannot model and keys DRAMsim3 itself ignores are reported, never
dropped silently (ImportReport).
"""
import math
import re
from pathlib import Path

from .._atomic import note_input
from ..errors import ConfigError
from .report import ImportReport

# --- reading the file the way DRAMsim3's INIReader does ------------------------------------------


def read_ini(path):
    """({(section, key): value}, [(section, key) in file order], {(section, key): key as spelt}),
    section and key names in lower case, as inih reads a file: `;`/`#` comment lines, `;`
    comments after whitespace, `=` or `:` separators, repeated keys joined by a newline (DRAMsim3
    then parses the first line), continuation lines."""
    values = {}
    order = []
    spelt = {}
    section = ""
    prev = None
    note_input(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if lineno == 1 and line.startswith("\ufeff"):
            line = line[1:]
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        if prev is not None and line[:1].isspace():
            values[prev] += "\n" + _strip_comment(stripped)
            continue
        if stripped.startswith("["):
            end = stripped.find("]")
            if end < 0:
                raise ConfigError(f"{path}:{lineno}: section line without ']'")
            section = stripped[1:end].strip().lower()
            prev = None
            continue
        m = re.match(r"([^=:]*)[=:](.*)", stripped)
        if m is None:
            raise ConfigError(f"{path}:{lineno}: expected 'key = value'")
        key = (section, m.group(1).strip().lower())
        value = _strip_comment(m.group(2).strip())
        if key in values:
            values[key] += "\n" + value
        else:
            values[key] = value
            order.append(key)
            spelt[key] = m.group(1).strip()
        prev = key
    return values, order, spelt


def _strip_comment(value):
    m = re.search(r"\s;", value)
    return (value[:m.start()] if m else value).strip()


def _strtol(text):
    """C strtol(text, &end, 0): the leading integer (0x hex, 0 octal), or None if there is none."""
    m = re.match(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if m is None:
        return None
    digits = m.group(2)
    base = 16 if digits[:2].lower() == "0x" else 8 if digits.startswith("0") and len(digits) > 1 else 10
    value = int(digits, base)
    return -value if m.group(1) == "-" else value


def _strtod(text):
    m = re.match(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)", text)
    return float(m.group(0)) if m else None


class _Reader:
    """DRAMsim3's Get/GetInteger/GetReal/GetBoolean over the file's values, remembering which keys
    were read and which defaults were used."""

    def __init__(self, values):
        self.values = values
        self.read = set()
        self.defaults = {}

    def _raw(self, section, key):
        self.read.add((section, key.lower()))
        value = self.values.get((section, key.lower()))
        return None if value is None else value.split("\n")[0]

    def _parsed(self, section, key, default, parse):
        """The key's value through `parse` (None: unparsable, as absent), else `default`, recorded."""
        value = self._raw(section, key)
        x = None if value is None else parse(value)
        if x is None:
            self.defaults[key] = default
            return default
        return x

    def get(self, section, key, default):
        return self._parsed(section, key, default, str)

    def integer(self, section, key, default):
        return self._parsed(section, key, default, _strtol)

    def real(self, section, key, default):
        return self._parsed(section, key, default, _strtod)

    def boolean(self, section, key, default):
        value = self._raw(section, key)
        v = (value or "").lower()
        if v in ("true", "yes", "on", "1"):
            return True
        if v in ("false", "no", "off", "0"):
            return False
        self.defaults[key] = default
        return default


PROTOCOLS = ("DDR3", "DDR4", "GDDR5", "GDDR5X", "GDDR6", "LPDDR", "LPDDR3", "LPDDR4", "HBM", "HBM2", "HMC")

# DRAMsim3 reads these, but nothing in its simulation uses them (2021 master)
_READ_BUT_UNUSED = {
    ("system", "write_buf_size"): "read but never used (the write drain threshold is a fixed 8)",
    ("system", "aggressive_precharging_enabled"): "read but never used",
    ("timing", "tcke"): "read but never used (power-down is not simulated)",
    ("timing", "txp"): "read but never used (power-down is not simulated)",
    ("timing", "trpre"): "read but never used",
    ("timing", "twpre"): "read but never used",
    ("dram_structure", "num_dies"): "used only by its thermal model",
}
# DRAMsim3's own output settings: nothing to simulate
_OUTPUT_KEYS = {("other", "epoch_period"), ("other", "output_level"), ("other", "output_prefix")}


def _log2(n):
    return int(n).bit_length() - 1 if n > 0 else 0


def import_dramsim3(path):
    """(raw pimdram memory config, ImportReport) for the DRAMsim3 .ini at `path`."""
    path = Path(path)
    values, order, spelt = read_ini(path)
    r = _Reader(values)
    report = ImportReport(str(path), "DRAMsim3")

    # InitSystemParams
    channel_size = r.integer("system", "channel_size", 1024)
    channels = r.integer("system", "channels", 1)
    bus_width = r.integer("system", "bus_width", 64)
    address_mapping = r.get("system", "address_mapping", "chrobabgraco")
    queue_structure = r.get("system", "queue_structure", "PER_BANK")
    row_buf_policy = r.get("system", "row_buf_policy", "OPEN_PAGE")
    cmd_queue_size = r.integer("system", "cmd_queue_size", 16)
    trans_queue_size = r.integer("system", "trans_queue_size", 32)
    unified_queue = r.boolean("system", "unified_queue", False)
    r.integer("system", "write_buf_size", 16)
    refresh_policy = r.get("system", "refresh_policy", "RANK_LEVEL_STAGGERED")
    enable_self_refresh = r.boolean("system", "enable_self_refresh", False)
    r.integer("system", "sref_threshold", 1000)
    r.boolean("system", "aggressive_precharging_enabled", False)

    # InitDRAMParams
    protocol = r.get("dram_structure", "protocol", "DDR3")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{path}: dram_structure.protocol: DRAMsim3 knows no protocol {protocol!r} "
                          f"(it knows {', '.join(PROTOCOLS)})")
    if protocol == "HMC":
        raise ConfigError(f"{path}: dram_structure.protocol: HMC (links, vaults and a crossbar) is not a "
                          "memory standard pimdram models")
    is_hbm = protocol in ("HBM", "HBM2")
    is_gddr = protocol in ("GDDR5", "GDDR5X", "GDDR6")
    bankgroups = r.integer("dram_structure", "bankgroups", 2)
    banks_per_group = r.integer("dram_structure", "banks_per_group", 2)
    if not r.boolean("dram_structure", "bankgroup_enable", True):
        banks_per_group *= bankgroups
        bankgroups = 1
    banks = bankgroups * banks_per_group
    rows = r.integer("dram_structure", "rows", 1 << 16)
    columns = r.integer("dram_structure", "columns", 1 << 10)
    device_width = r.integer("dram_structure", "device_width", 8)
    bl = r.integer("dram_structure", "BL", 8)
    r.integer("dram_structure", "num_dies", 1)
    dual_cmd = r.boolean("dram_structure", "hbm_dual_cmd", True) and is_hbm
    if protocol == "GDDR5":
        burst_cycle = bl // 4 if bl else 0
    elif protocol == "GDDR5X":
        burst_cycle = bl // 8 if bl else 0
    elif protocol == "GDDR6":
        burst_cycle = bl // 16 if bl else 0
    else:
        burst_cycle = bl // 2 if bl else 0
    if bl == 0:
        bl = 4 if is_hbm else 8
        report.not_modelled("dram_structure.BL", "0 (DRAMsim3's perfect-bandwidth mode): a burst takes one cycle here")
        burst_cycle = 1
    if is_gddr:
        columns *= bl
    elif is_hbm:
        columns *= 2

    # CalculateSize
    if device_width <= 0 or bus_width < device_width:
        raise ConfigError(f"{path}: system.bus_width {bus_width} and dram_structure.device_width "
                          f"{device_width}: a rank needs at least one device")
    devices_per_rank = bus_width // device_width
    page_size = columns * device_width // 8
    megs_per_bank = page_size * (rows // 1024) // 1024
    megs_per_rank = megs_per_bank * banks * devices_per_rank
    if megs_per_rank <= 0:
        raise ConfigError(f"{path}: the organisation gives ranks of {megs_per_rank} MB")
    if megs_per_rank > channel_size:
        report.note("system.channel_size", f"{channel_size} MB is less than one rank: DRAMsim3 uses one rank "
                                           f"of {megs_per_rank} MB")
        ranks = 1
    else:
        ranks = channel_size // megs_per_rank

    # SetAddressMapping
    access_bytes = bus_width // 8 * bl
    col_bits = _log2(columns) - _log2(bl)
    if len(address_mapping) != 12:
        raise ConfigError(f"{path}: system.address_mapping: {address_mapping!r}: DRAMsim3 needs 6 fields of "
                          "2 letters (ch, ra, bg, ba, ro, co)")

    # InitTimingParams
    t = {}
    tck = r.real("timing", "tCK", 1.0)
    t["AL"] = r.integer("timing", "AL", 0)
    t["CL"] = r.integer("timing", "CL", 12)
    t["CWL"] = r.integer("timing", "CWL", 12)
    for key, default in (("tCCD_L", 6), ("tCCD_S", 4), ("tRTRS", 2), ("tRTP", 5), ("tWTR_L", 5), ("tWTR_S", 5),
                         ("tWR", 10), ("tRP", 10), ("tRRD_L", 4), ("tRRD_S", 4), ("tRAS", 24), ("tRCD", 10),
                         ("tRFC", 74), ("tCKE", 6), ("tCKESR", 12), ("tXS", 432), ("tXP", 8), ("tRFCb", 20),
                         ("tREFI", 7800), ("tREFIb", 1950), ("tFAW", 50), ("tRPRE", 1), ("tWPRE", 1),
                         ("tPPD", 0), ("t32AW", 330), ("tRCDRD", 24), ("tRCDWR", 20)):
        t[key] = r.integer("timing", key, default)
    r.integer("timing", "ideal_memory_latency", 10)
    t["tRC"] = t["tRAS"] + t["tRP"]

    # InitPowerParams
    p = {}
    for key, default in (("VDD", 1.2), ("IDD0", 48), ("IDD2P", 25), ("IDD2N", 34), ("IDD3N", 43), ("IDD4W", 123),
                         ("IDD4R", 135), ("IDD5AB", 250), ("IDD5PB", 5), ("IDD6x", 31)):
        p[key] = r.real("power", key, default)

    # InitOtherParams (DRAMsim3's output settings)
    r.integer("other", "epoch_period", 100000)
    r.integer("other", "output_level", 1)
    r.get("other", "output_prefix", "dramsim3")

    per_bank = refresh_policy == "BANK_LEVEL_STAGGERED"
    if refresh_policy not in ("RANK_LEVEL_STAGGERED", "RANK_LEVEL_SIMULTANEOUS", "BANK_LEVEL_STAGGERED"):
        raise ConfigError(f"{path}: system.refresh_policy: DRAMsim3 knows no policy {refresh_policy!r}")

    raw = {
        "name": "dramsim3_" + re.sub(r"[^0-9a-z_.-]", "_", path.stem.lower()),
        "standard": protocol,
        "description": f"DRAMsim3 {path.stem}, imported from {path.name} by pimdram config import",
        "sources": [f"DRAMsim3 configuration {path.name}, translated as DRAMsim3 (2021 master) reads it"],
        "organization": {
            "levels": [{"name": "channel", "count": channels}, {"name": "rank", "count": ranks},
                       {"name": "bank_group", "count": bankgroups}, {"name": "bank", "count": banks_per_group}],
            "rows": rows,
            "columns": 1 << col_bits,
            "access_bytes": access_bytes,
            "data_bus": "channel",
        },
    }
    timing = {"tCK": tck}
    names = _timing_names(t, burst_cycle, is_hbm, is_gddr, protocol, per_bank)
    timing.update(names)
    raw["timing"] = timing
    al = " + nAL" if t["AL"] else ""
    raw["latency"] = {"read": f"nCL + nBL{al}", "write": f"nCWL + nBL{al}"}
    commands = {
        "ACT": {"kind": "activate", "scope": "bank", "bus": "row"},
        "PRE": {"kind": "precharge", "scope": "bank", "bus": "row"},
        "RD": {"kind": "read", "scope": "bank", "bus": "column"},
        "WR": {"kind": "write", "scope": "bank", "bus": "column"},
        "RDA": {"kind": "read_precharge", "scope": "bank", "bus": "column"},
        "WRA": {"kind": "write_precharge", "scope": "bank", "bus": "column"},
        "REFab": {"kind": "refresh", "scope": "rank", "bus": "row"},
    }
    if per_bank:
        commands["REFb"] = {"kind": "refresh", "scope": "bank", "bus": "row"}
    raw["commands"] = commands
    raw["command_bus"] = {"separate_row_column": bool(dual_cmd)}
    raw["constraints"] = _constraints(names, ranks, bankgroups, is_hbm, is_gddr, protocol, per_bank, t["AL"])
    raw["refresh"] = ({"per_bank": {"command": "REFb", "interval": f"nREFIb * {banks * ranks}"}} if per_bank else
                      {"all_bank": {"command": "REFab", "interval": "nREFI"}})
    power = {"vdd": p["VDD"], "idd0": p["IDD0"], "idd2n": p["IDD2N"], "idd3n": p["IDD3N"], "idd4r": p["IDD4R"],
             "idd4w": p["IDD4W"], "idd5b": p["IDD5AB"]}
    if per_bank:
        power["idd5pb"] = p["IDD5PB"]
    power["devices_per_rank"] = devices_per_rank
    raw["power"] = {k: (int(v) if float(v).is_integer() else v) for k, v in power.items()}
    raw["controller"] = {
        "read_queue": trans_queue_size,
        "write_queue": trans_queue_size,
        "bank_queue": cmd_queue_size if queue_structure == "PER_BANK" else 0,
        "scheduler": "round_robin",
        "row_hit_cap": 4,
        "row_policy": "closed" if row_buf_policy == "CLOSE_PAGE" else "open",
        "write_high_watermark": 1.0,
        "write_low_watermark": _drain_fraction(trans_queue_size),
        "refresh": "per_bank" if per_bank else "all_bank",
        "refresh_stagger": refresh_policy != "RANK_LEVEL_SIMULTANEOUS",
    }
    raw["frontend"] = {"offer_rate": 1}
    raw["address_mapping"] = address_mapping

    # what does not carry over
    if queue_structure == "PER_RANK":
        report.not_modelled("system.queue_structure", "PER_RANK command queues (one per rank): scheduled "
                                                      "from the transaction queues instead")
    elif queue_structure != "PER_BANK":
        raise ConfigError(f"{path}: system.queue_structure: DRAMsim3 knows PER_BANK and PER_RANK, "
                          f"not {queue_structure!r}")
    if unified_queue:
        report.not_modelled("system.unified_queue", "one queue for reads and writes: separate read and write "
                                                    f"queues of {trans_queue_size} here")
    if row_buf_policy == "CLOSE_PAGE":
        report.not_modelled("system.row_buf_policy", "CLOSE_PAGE precharges after every access; pimdram's "
                                                     "closed policy keeps a row open while queued hits remain")
    elif row_buf_policy != "OPEN_PAGE":
        report.note("system.row_buf_policy", f"{row_buf_policy!r} is not CLOSE_PAGE: open page, as in DRAMsim3")
    if enable_self_refresh:
        report.not_modelled("system.enable_self_refresh", "self-refresh of idle ranks")
    if refresh_policy == "RANK_LEVEL_SIMULTANEOUS" and ranks > 1:
        report.not_modelled("system.refresh_policy", "RANK_LEVEL_SIMULTANEOUS: DRAMsim3's code refreshes only "
                                                     "rank 0 every tREFI (its loop stops at the first rank); "
                                                     "every rank is refreshed here, all at once")
    if per_bank:
        report.note("system.refresh_policy", "BANK_LEVEL_STAGGERED: each bank every tREFIb x banks, staggered in "
                                             "bank order (DRAMsim3 steps through bank groups first)")
    for key in ("IDD2P", "IDD6x"):
        if ("power", key.lower()) in values:
            report.not_modelled(f"power.{key}", "power-down and self-refresh currents (those modes are not "
                                                "simulated)")
    if ("power", "idd5pb") in values and not per_bank:
        report.ignored("power.IDD5PB", "per-bank refresh current, unused with a rank-level refresh policy")
    for key in ("tCKESR", "tXS"):
        if ("timing", key.lower()) in values:
            (report.not_modelled if enable_self_refresh else report.ignored)(
                f"timing.{key}", "self-refresh timing" + ("" if enable_self_refresh else ", unused: self-refresh is off"))
    for key in ("tRFCb", "tREFIb"):
        if ("timing", key.lower()) in values and not per_bank:
            report.ignored(f"timing.{key}", "per-bank refresh timing, unused with a rank-level refresh policy")
    if ("timing", "trfcb") in values and per_bank:
        report.ignored("timing.tRFCb", "DRAMsim3 never applies it: the refreshed bank may activate at once "
                                       "(reproduced here), other banks wait tRFC")
    if ("timing", "t32aw") in values and not is_gddr:
        report.ignored("timing.t32AW", f"used only for GDDR, not {protocol}")
    if ("timing", "tppd") in values and not (is_gddr or protocol == "LPDDR4"):
        report.ignored("timing.tPPD", f"used only for GDDR and LPDDR4, not {protocol}")
    for key in ("tRCDRD", "tRCDWR"):
        if ("timing", key.lower()) in values and not (is_gddr or is_hbm):
            report.ignored(f"timing.{key}", f"used only for GDDR and HBM ({protocol} uses tRCD)")
    if ("timing", "trcd") in values and (is_gddr or is_hbm):
        report.ignored("timing.tRCD", f"{protocol} uses tRCDRD and tRCDWR")
    if ("timing", "ideal_memory_latency") in values:
        report.ignored("timing.ideal_memory_latency", "used only by DRAMsim3's ideal memory system")
    if ("dram_structure", "hbm_dual_cmd") in values and not is_hbm:
        report.ignored("dram_structure.hbm_dual_cmd", f"HBM only, not {protocol}")
    for (section, key), why in _READ_BUT_UNUSED.items():
        if (section, key) in values:
            report.ignored(f"{section}.{spelt[section, key]}", why)
    for section, key in order:
        name = f"{section}.{spelt[section, key]}"
        if (section, key) in _OUTPUT_KEYS:
            report.not_modelled(name, "DRAMsim3's output settings")
        elif section == "thermal":
            report.ignored(name, "read only by DRAMsim3's thermal build")
        elif section == "hmc":
            report.ignored(name, "HMC settings, unused for " + protocol)
        elif (section, key) not in r.read:
            report.ignored(name, "not a key DRAMsim3 reads")
    for key in ("tRTP", "tRTRS", "tCCD_S", "tCCD_L", "tWTR_S", "tWTR_L", "tRRD_S", "tRRD_L", "tFAW", "tWR",
                "tRP", "tRAS", "tRFC", "tREFI", "CL", "CWL"):
        if key in r.defaults:
            report.default(f"timing.{key}", r.defaults[key])
    if is_gddr or is_hbm:
        for key in ("tRCDRD", "tRCDWR"):
            if key in r.defaults:
                report.default(f"timing.{key}", r.defaults[key])
    elif "tRCD" in r.defaults:
        report.default("timing.tRCD", r.defaults["tRCD"])
    return raw, report


def _drain_fraction(trans_queue_size):
    """DRAMsim3 starts draining writes when its write buffer holds more than 8 (and the command
    queues are empty): at least 9 of trans_queue_size."""
    return min(1.0, 9 / trans_queue_size)


def _timing_names(t, burst_cycle, is_hbm, is_gddr, protocol, per_bank):
    """The nXXX cycle timings the constraint rows use, from DRAMsim3's values."""
    n = {"nBL": burst_cycle, "nCL": t["CL"], "nCWL": t["CWL"]}
    if t["AL"]:
        n["nAL"] = t["AL"]
    if is_gddr or is_hbm:
        n["nRCD"] = t["tRCDRD"]
        if t["tRCDWR"] != t["tRCDRD"]:
            n["nRCD_WR"] = t["tRCDWR"]
    else:
        n["nRCD"] = t["tRCD"]
    n.update({"nRP": t["tRP"], "nRAS": t["tRAS"], "nRC": t["tRC"], "nCCD_S": t["tCCD_S"], "nCCD_L": t["tCCD_L"],
              "nRRD_S": t["tRRD_S"], "nRRD_L": t["tRRD_L"], "nFAW": t["tFAW"], "nWTR_S": t["tWTR_S"],
              "nWTR_L": t["tWTR_L"], "nRTP": t["tRTP"], "nWR": t["tWR"], "nRTRS": t["tRTRS"], "nRFC": t["tRFC"],
              "nREFI": t["tREFI"]})
    if is_gddr:
        n["n32AW"] = t["t32AW"]
    if is_gddr or protocol == "LPDDR4":
        n["nPPD"] = t["tPPD"]
    if per_bank:
        n["nREFIb"] = t["tREFIb"]
    return n


def _constraints(n, ranks, bankgroups, is_hbm, is_gddr, protocol, per_bank, al):
    """DRAMsim3's timing.cc table as constraint rows. DRAMsim3 gives, per preceding and following
    command, a latency for the same bank, other banks of the bank group, other bank groups of the
    rank and other ranks; those zones become bank, bank_group and rank rows (the largest zone
    first) and sibling rows where a zone needs less than an enclosing one."""
    AL = "nAL + " if al else ""
    rcd_wr = "nRCD_WR" if "nRCD_WR" in n else "nRCD"
    rcd = "nRCD - nAL" if al and not (is_hbm or is_gddr) else "nRCD"
    rcd_wr = "nRCD - nAL" if al and not (is_hbm or is_gddr) else rcd_wr
    L = "L" if bankgroups > 1 else "S"      # DRAMsim3 uses the _S timings when there is one bank group
    e = {
        "rtr_l": f"max(nBL, nCCD_{L})", "rtr_s": "max(nBL, nCCD_S)", "rtr_o": "nBL + nRTRS",
        "rtw": "nCL + nBL - nCWL + nRTRS", "rtw_o": "nCL + nBL - nCWL + nRTRS",
        "rtp": f"{AL}nRTP", "rpta": f"{AL}nBL + nRTP + nRP", "rta": f"{AL}nRTP + nRP",
        "wtr_l": f"{AL}nCWL + nBL + nWTR_{L}", "wtr_s": f"{AL}nCWL + nBL + nWTR_S",
        "wtr_o": "max(0, nCWL + nBL + nRTRS - nCL)",
        "wtw_l": f"max(nBL, nCCD_{L})", "wtw_s": "max(nBL, nCCD_S)", "wtw_o": "nBL",
        "wtp": f"{AL}nCWL + nBL + nWR", "wta": f"{AL}nCWL + nBL + nWR + nRP",
        "ata": "nRC", "ata_l": f"nRRD_{L}", "ata_s": "nRRD_S", "atp": "nRAS",
        "atr": rcd, "atw": rcd_wr, "pta": "nRP", "ptp": "nPPD",
        "rfta": "nRFC", "rftrf": "nREFI", "atrf": "nRC",
    }
    values = {k: _eval(v, n) for k, v in e.items()}

    # zones[(from, to)] = {"b": same bank, "g": other banks same bank group, "r": other bank groups
    # same rank, "o": other ranks, "rank": rank-scope commands}
    zones = {}

    def put(zone, frm, pairs):
        for to, key in pairs:
            zones.setdefault((frm, to), {})[zone] = key

    rw = lambda a, b: [("RD", a), ("RDA", a), ("WR", b), ("WRA", b)]   # noqa: E731
    for frm in ("RD", "RDA"):
        put("g", frm, rw("rtr_l", "rtw"))
        put("r", frm, rw("rtr_s", "rtw"))
        if ranks > 1:
            put("o", frm, rw("rtr_o", "rtw_o"))
    put("b", "RD", rw("rtr_l", "rtw") + [("PRE", "rtp")])
    for frm in ("WR", "WRA"):
        put("g", frm, rw("wtr_l", "wtw_l"))
        put("r", frm, rw("wtr_s", "wtw_s"))
        if ranks > 1:
            put("o", frm, rw("wtr_o", "wtw_o"))
    put("b", "WR", rw("wtr_l", "wtw_l") + [("PRE", "wtp")])
    refreshes = [("REFab", "rta")] + ([("REFb", "rta")] if per_bank else [])
    put("b", "RDA", [("ACT", "rpta")] + refreshes)
    put("b", "WRA", [("ACT", "wta")] + [(c, "wta") for c, _ in refreshes])
    put("b", "ACT", [("ACT", "ata"), ("RD", "atr"), ("RDA", "atr"), ("WR", "atw"), ("WRA", "atw"), ("PRE", "atp")])
    put("g", "ACT", [("ACT", "ata_l")] + ([("REFb", "atrf")] if per_bank else []))
    put("r", "ACT", [("ACT", "ata_s")] + ([("REFb", "atrf")] if per_bank else []))
    put("b", "PRE", [("ACT", "pta"), ("REFab", "pta")] + ([("REFb", "pta")] if per_bank else []))
    if is_gddr or protocol == "LPDDR4":
        put("g", "PRE", [("PRE", "ptp")])
        put("r", "PRE", [("PRE", "ptp")])
    put("rank", "REFab", [("ACT", "rfta"), ("REFab", "rfta")])
    if per_bank:
        # DRAMsim3 applies REFRESH_BANK's own lists only: none for the refreshed bank (its
        # same-bank list is empty and its same-rank list, with tRFCb, is never applied)
        put("g", "REFb", [("ACT", "rfta"), ("REFb", "rftrf")])
        put("r", "REFb", [("ACT", "rfta"), ("REFb", "rftrf")])

    rows = []
    for (frm, to), z in zones.items():
        rows.extend(_zone_rows(frm, to, z, values, e))
    rows.append(("rank", "ACT", "ACT", "nFAW", 4, False))
    if is_gddr:
        rows.append(("rank", "ACT", "ACT", "n32AW", 32, False))
    return _grouped(rows, e)


_COLUMN = ("RD", "WR", "RDA", "WRA")


def _zone_rows(frm, to, z, v, e):
    """Rows giving exactly the latencies of DRAMsim3's zones for one command pair: a row at the
    widest level whose zones share a latency, narrower rows where an expression differs (as one
    writes such a table by hand), sibling rows where a zone needs less than one it encloses. A
    zone DRAMsim3 leaves out has no constraint, except for the same bank where the preceding
    command leaves it in a state the following one cannot be issued in (closed for a column
    command or a precharge, open for a refresh): there any latency is moot."""
    rows = []
    if "rank" in z:
        rows.append(("rank", frm, to, z["rank"], 1, False))
    if "o" in z:
        rows.append(("rank", frm, to, z["o"], 1, True))
    moot = ((frm in ("RDA", "WRA", "PRE") and (to in _COLUMN or to == "PRE"))
            or (frm == "ACT" and to in ("REFab", "REFb")))

    def val(zone):
        if zone in z:
            return v[z[zone]]
        return math.inf if zone == "b" and moot else 0

    expr = {k: e[z[k]] for k in ("b", "g", "r") if k in z}
    cover_g = cover_b = None        # expression a wider row already imposes on the zone
    if "r" in z:
        if val("r") <= val("g") and val("r") <= val("b"):
            rows.append(("rank", frm, to, z["r"], 1, False))
            cover_g = cover_b = expr["r"]
        else:
            rows.append(("bank_group", frm, to, z["r"], 1, True))
    if "g" in z and expr["g"] != cover_g:
        if val("g") <= val("b"):
            rows.append(("bank_group", frm, to, z["g"], 1, False))
            cover_b = expr["g"]
        else:
            rows.append(("bank", frm, to, z["g"], 1, True))
    if "b" in z and expr["b"] != cover_b:
        rows.append(("bank", frm, to, z["b"], 1, False))
    return rows


def _grouped(rows, expressions):
    """Rows with the same level, latency, window and sibling merged into from/to lists, in order."""
    merged = {}
    for level, frm, to, key, window, sibling in rows:
        latency = expressions.get(key, key)
        group = merged.setdefault((level, latency, window, sibling, frm), [])
        if to not in group:
            group.append(to)
    by_to = {}
    for (level, latency, window, sibling, frm), tos in merged.items():
        froms = by_to.setdefault((level, latency, window, sibling, tuple(tos)), [])
        froms.append(frm)
    out = []
    for (level, latency, window, sibling, tos), froms in by_to.items():
        row = {"level": level, "from": froms if len(froms) > 1 else froms[0],
               "to": list(tos) if len(tos) > 1 else tos[0], "latency": latency}
        if window > 1:
            row["window"] = window
        if sibling:
            row["sibling"] = True
        out.append(row)
    return out


def _eval(text, names):
    from . import expr
    try:
        return expr.evaluate(text, names)
    except (ValueError, ZeroDivisionError):
        return math.inf        # a name this protocol lacks: the row is not emitted anyway
