"""Imports a Ramulator 2 memory-system configuration as a pimdram memory config (raw YAML data).

Two forms are read:

- Ramulator 2.1's exported YAML (`python -m ramulator export CONFIG.py -o CONFIG.yaml`, the file
  its C++ library and gem5 wrapper load): `memory_system:` with one controller per channel, each
  carrying its DRAM fully resolved (organisation counts, timing values, the constraint table with
  Ramulator's multi-cycle adjustments already applied, in its ticks). This is translated row for
  row: nothing is re-derived.
- Ramulator 2.0-style YAML (`MemorySystem:` with `DRAM: {impl, org: {preset, ...}, timing:
  {preset, ...}}`, `Controller:`, `AddrMapper:`): the presets' values live in Ramulator's code,
  so the DRAM is resolved by the installed `ramulator` (2.1) Python package when there is one;
  otherwise the import asks for the exported form.

What pimdram cannot model, and what Ramulator ignores, is reported (ImportReport), never dropped
silently. The standards' structure (level, command and timing-parameter names in Ramulator's
order, prefetch, clock ticks per CK, refresh scope) is written out below for the standards
pimdram supports.
"""
import math
import re
from pathlib import Path

from ..errors import ConfigError
from .report import ImportReport

LEVEL_NAMES = {"Channel": "channel", "PseudoChannel": "pseudo_channel", "Sid": "sid", "Rank": "rank",
               "BankGroup": "bank_group", "Bank": "bank"}
# kind, scope (None: the standard's all-bank refresh scope), bus
COMMANDS = {
    "ACT": ("activate", "bank", "row"), "PREpb": ("precharge", "bank", "row"),
    "PREab": ("precharge", None, "row"), "RD": ("read", "bank", "column"), "WR": ("write", "bank", "column"),
    "RDA": ("read_precharge", "bank", "column"), "WRA": ("write_precharge", "bank", "column"),
    "REFab": ("refresh", None, "row"), "REFpb": ("refresh", "bank", "row"),
}
# refresh management, issued only by Ramulator's RFM plugin
RFM_COMMANDS = ("RFMab", "RFMpb")

STANDARDS = {
    "HBM3": {
        "levels": ["Channel", "PseudoChannel", "Sid", "BankGroup", "Bank", "Row", "Column"],
        "commands": ["ACT", "PREpb", "PREab", "RD", "WR", "RDA", "WRA", "REFab", "REFpb", "RFMab", "RFMpb"],
        "timing": ["rate", "nBL", "nCL", "nRCDRD", "nRCDWR", "nRP", "nRAS", "nRC", "nWR", "nRTP", "nCWL", "nCCDS",
                   "nCCDL", "nCCDR", "nRRDS", "nRRDL", "nWTRS", "nWTRL", "nRTW", "nFAW", "nPPD", "nRFC", "nRFCpb",
                   "nRFMab", "nRFMpb", "nRREFD", "nREFI", "nREFIpb", "tCK_ps"],
        "prefetch": 8, "ticks_per_ck": 2, "dual_bus": True, "refresh_scope": "PseudoChannel",
        "controllers": ("HBM34",),
    },
    "HBM2": {
        "levels": ["Channel", "PseudoChannel", "BankGroup", "Bank", "Row", "Column"],
        "commands": ["ACT", "PREpb", "PREab", "RD", "WR", "RDA", "WRA", "REFab", "REFpb"],
        "timing": ["rate", "nBL", "nCL", "nRCDRD", "nRCDWR", "nRP", "nRAS", "nRC", "nWR", "nRTPL", "nCWL", "nCCDS",
                   "nCCDL", "nRRDS", "nRRDL", "nWTRS", "nWTRL", "nFAW", "nRFC", "nRFCpb", "nRREFD", "nREFI",
                   "nREFIpb", "tCK_ps"],
        "prefetch": 4, "ticks_per_ck": 1, "dual_bus": True, "refresh_scope": "PseudoChannel",
        "controllers": ("HBM12",),
    },
    "GDDR6": {
        "levels": ["Channel", "BankGroup", "Bank", "Row", "Column"],
        "commands": ["ACT", "PREab", "PREpb", "RD", "WR", "RDA", "WRA", "REFab", "REFpb"],
        "timing": ["rate", "nBL", "nCL", "nRCDRD", "nRCDWR", "nRP", "nRAS", "nRC", "nWR", "nRTP", "nCWL", "nCCDS",
                   "nCCDL", "nRRDS", "nRRDL", "nWTRS", "nWTRL", "nFAW", "nRFCpb", "nRREFD", "nREFI", "tCK_ps",
                   "nRFCab", "nPPD"],
        "prefetch": 16, "ticks_per_ck": 1, "dual_bus": False, "refresh_scope": "Channel",
        "controllers": ("GenericDDR",),
    },
    "DDR4": {
        "levels": ["Channel", "Rank", "BankGroup", "Bank", "Row", "Column"],
        "commands": ["ACT", "PREpb", "PREab", "RD", "WR", "RDA", "WRA", "REFab"],
        "timing": ["rate", "nBL", "nCL", "nRCD", "nRP", "nRAS", "nRC", "nWR", "nRTP", "nCWL", "nCCDS", "nCCDL",
                   "nRRDS", "nRRDL", "nWTRS", "nWTRL", "nFAW", "nRFC", "nREFI", "nCS", "tCK_ps"],
        "prefetch": 8, "ticks_per_ck": 1, "dual_bus": False, "refresh_scope": "Rank",
        "controllers": ("GenericDDR",),
    },
}
# Ramulator's timing names that pimdram's presets spell otherwise
TIMING_NAMES = {"nRCDRD": "nRCD", "nRCDWR": "nRCD_WR", "nCCDS": "nCCD_S", "nCCDL": "nCCD_L", "nCCDR": "nCCD_R",
                "nRRDS": "nRRD_S", "nRRDL": "nRRD_L", "nWTRS": "nWTR_S", "nWTRL": "nWTR_L", "nRTPL": "nRTP",
                "nRFCab": "nRFC", "nCS": "nRTRS"}
# pimdram presets whose IDD figures stand in for the currents Ramulator does not have
POWER_STAND_INS = {"HBM3": "hbm3_6.4gbps", "HBM2": "hbm2_2gbps", "GDDR6": "gddr6_14gbps", "DDR4": "ddr4_3200"}
# keys of a controller whose values the translation reads (every other key is reported)
_CONTROLLER_KEYS = {"impl", "wr_low_watermark", "wr_high_watermark", "read_buffer_size", "write_buffer_size",
                    "priority_buffer_size", "scheduler", "refresh_manager", "row_policy", "addr_mapper", "dram",
                    "controller_plugins", "plugins"}


def is_ramulator2(data):
    """Whether parsed YAML data is a Ramulator 2 configuration (2.1 export or 2.0 style)."""
    return isinstance(data, dict) and ("memory_system" in data or "MemorySystem" in data)


def import_ramulator2(path, data):
    """(raw pimdram memory config, ImportReport) for the Ramulator 2 configuration `data` read
    from `path`."""
    path = Path(path)
    report = ImportReport(str(path), "Ramulator 2")
    if "memory_system" in data:
        memory, frontend = data["memory_system"], data.get("frontend") or {}
        prefix = "memory_system"
    else:
        memory, frontend = _from_v20(path, data, report), data.get("Frontend") or {}
        prefix = "MemorySystem"
    if not isinstance(memory, dict):
        raise ConfigError(f"{path}: {prefix}: expected a mapping")
    impl = memory.get("impl")
    if impl != "GenericDRAM":
        raise ConfigError(f"{path}: {prefix}.impl: {impl!r}: pimdram reads Ramulator's GenericDRAM memory system")
    controllers = memory.get("controllers")
    if not isinstance(controllers, list) or not controllers:
        raise ConfigError(f"{path}: {prefix}.controllers: expected one controller per channel")
    first = controllers[0]
    for i, c in enumerate(controllers[1:], start=1):
        if c != first:
            raise ConfigError(f"{path}: {prefix}.controllers[{i}]: differs from controllers[0]; pimdram "
                              "simulates channels of one configuration")
    for key in memory:
        if key not in ("impl", "clock_ratio", "channel_mapper", "controllers"):
            report.ignored(f"{prefix}.{key}", "not a key of Ramulator's GenericDRAM")
    raw = _controller(path, first, len(controllers), memory.get("channel_mapper") or {}, report,
                      f"{prefix}.controllers[0]")
    fe_impl = frontend.get("impl") if isinstance(frontend, dict) else None
    if fe_impl in ("LoadStoreTrace", "ReadWriteTrace"):
        raw["frontend"] = {"offer_rate": 1}
        if frontend.get("clock_ratio", 1) != memory.get("clock_ratio", 1):
            report.not_modelled("frontend.clock_ratio", f"{frontend.get('clock_ratio')} against the memory's "
                                f"{memory.get('clock_ratio')}: one request offered per memory cycle here")
    else:
        raw["frontend"] = {"offer_rate": 0}
        if fe_impl is not None:
            report.note("frontend.impl", f"{fe_impl}: the requests come from a trace or a host "
                                         "(pimdram.MemorySystem) here")
    name = re.sub(r"[^0-9a-z_.-]", "_", path.stem.lower())
    raw["name"] = name if name.startswith("ramulator2") else "ramulator2_" + name
    raw["description"] = (f"Ramulator 2 {raw['standard']} ({len(controllers)} channels), imported from "
                          f"{path.name} by pimdram config import")
    raw["sources"] = [f"Ramulator 2 configuration {path.name}"]
    order = ["name", "standard", "description", "sources", "organization", "timing", "latency", "commands",
             "command_bus", "constraints", "refresh", "power", "controller", "frontend", "address_mapping"]
    return {k: raw[k] for k in order if k in raw}, report


def _controller(path, c, n_channels, channel_mapper, report, where):
    if not isinstance(c, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping")
    dram = c.get("dram")
    if not isinstance(dram, dict):
        raise ConfigError(f"{path}: {where}.dram: missing (expected the exported, resolved DRAM)")
    standard = dram.get("impl")
    if standard not in STANDARDS:
        raise ConfigError(f"{path}: {where}.dram.impl: {standard!r}: pimdram imports Ramulator's "
                          f"{', '.join(STANDARDS)}")
    std = STANDARDS[standard]
    ctl = c.get("impl")
    if ctl not in std["controllers"]:
        report.not_modelled(f"{where}.impl", f"{ctl} (Ramulator's controller for {standard} is "
                                             f"{std['controllers'][0]}); its scheduling is modelled as that one's")
    for key in c:
        if key not in _CONTROLLER_KEYS:
            report.ignored(f"{where}.{key}", f"not a key of Ramulator's {ctl} controller")
    levels_r = std["levels"][:-2]                       # without Row and Column
    levels = [LEVEL_NAMES[lv] for lv in levels_r]
    org = dram.get("org") or {}
    counts = org.get("count")
    if not isinstance(counts, list) or len(counts) != len(std["levels"]):
        raise ConfigError(f"{path}: {where}.dram.org.count: expected {len(std['levels'])} counts "
                          f"({', '.join(std['levels'])})")
    values = dram.get("timing")
    if not isinstance(values, list) or len(values) != len(std["timing"]):
        raise ConfigError(f"{path}: {where}.dram.timing: expected {len(std['timing'])} values "
                          f"({', '.join(std['timing'])})")
    timing_r = dict(zip(std["timing"], values))
    channel_width = dram.get("channel_width")
    access_bytes = channel_width * std["prefetch"] // 8
    rows, device_columns = counts[-2], counts[-1]
    columns = device_columns // std["prefetch"]

    # timings: Ramulator's values, in its ticks (half CK for HBM3); nRCDRD is pimdram's nRCD
    tck_ps = timing_r.pop("tCK_ps")
    timing_r.pop("rate")
    timing = {"tCK": tck_ps / 1000}
    for k, v in timing_r.items():
        if v is None or v < 0 or k in ("nRFMab", "nRFMpb"):
            continue
        timing[TIMING_NAMES.get(k, k)] = int(v)
    if std["ticks_per_ck"] != 1:
        report.note(f"{where}.dram.timing", f"in Ramulator's ticks of half a CK ({tck_ps} ps; its tCK_ps is "
                                             "the CK period halved, rounded down)")

    commands_r = std["commands"]
    scope_all = LEVEL_NAMES[std["refresh_scope"]]
    commands = {}
    for name in commands_r:
        if name in RFM_COMMANDS:
            continue
        kind, scope, bus = COMMANDS[name]
        commands[name] = {"kind": kind, "scope": scope or scope_all, "bus": bus}
    if any(name in RFM_COMMANDS for name in commands_r):
        report.note(f"{where}.dram", "RFMab/RFMpb (refresh management, issued only by Ramulator's RFM "
                                     "plugin) left out with their rows")

    rows_out = []
    for i, row in enumerate(dram.get("timing_constraints") or []):
        if not isinstance(row, list) or len(row) < 4:
            raise ConfigError(f"{path}: {where}.dram.timing_constraints[{i}]: expected [level, [from], [to], "
                              "latency, (window), (sibling)]")
        level, frm, to, latency = row[:4]
        window = row[4] if len(row) > 4 else 1
        sibling = bool(row[5]) if len(row) > 5 else False
        frm = [commands_r[k] for k in frm if commands_r[k] in commands]
        to = [commands_r[k] for k in to if commands_r[k] in commands]
        if not frm or not to:
            continue
        out = {"level": LEVEL_NAMES[std["levels"][level]], "from": frm if len(frm) > 1 else frm[0],
               "to": to if len(to) > 1 else to[0], "latency": int(latency)}
        if window != 1:
            out["window"] = int(window)
        if sibling:
            out["sibling"] = True
        rows_out.append(out)
    if not rows_out:
        raise ConfigError(f"{path}: {where}.dram.timing_constraints: missing (expected the exported table)")

    raw = {
        "standard": standard,
        "organization": {
            "levels": [{"name": n, "count": int(n_channels if i == 0 else counts[i])} for i, n in enumerate(levels)],
            "rows": int(rows),
            "columns": int(columns),
            "access_bytes": int(access_bytes),
            "data_bus": LEVEL_NAMES["PseudoChannel"] if "PseudoChannel" in std["levels"] else "channel",
        },
        "timing": timing,
        "latency": {"read": int(dram.get("read_latency", 0)), "write": "nCWL + nBL"},
        "commands": commands,
        "command_bus": {"separate_row_column": std["dual_bus"]},
        "constraints": rows_out,
    }
    report.note(f"{where}.dram", "a write completes when its data is written (nCWL + nBL after WR); "
                                 "Ramulator calls it complete when WR issues")
    # Ramulator has no current figures; the energy model needs them
    from .memory import load_memory
    preset = POWER_STAND_INS[standard]
    raw["power"] = {k: int(v) if float(v).is_integer() else v for k, v in load_memory(preset).power.items()}
    raw["power"]["devices_per_rank"] = max(1, int(channel_width) // int(org.get("dq") or channel_width))
    report.note(f"{where}.dram", f"Ramulator has no IDD currents: those of pimdram's {preset} preset (see its "
                                 "sources), devices per rank from channel_width / dq")
    if dram.get("data_payload_bytes") is not None:
        report.not_modelled(f"{where}.dram.data_payload_bytes", "payload narrower than the burst")

    banks = int(math.prod(counts[1:-2]))
    raw["refresh"], raw_controller = _refresh(path, c.get("refresh_manager") or {}, timing, commands, banks,
                                              report, where)
    raw["controller"] = _policy(path, c, report, where)
    raw["controller"].update(raw_controller)
    raw["address_mapping"] = _address_mapping(path, c.get("addr_mapper") or {}, channel_mapper, std, counts,
                                              n_channels, report, where)
    for key in ("controller_plugins", "plugins"):
        for p in c.get(key) or []:
            report.not_modelled(f"{where}.{key}", f"plugin {p.get('impl') if isinstance(p, dict) else p}")
    return raw


def _refresh(path, rm, timing, commands, banks, report, where):
    impl = rm.get("impl", "AllBank")
    if impl == "AllBank":
        scatter = rm.get("scatter_interval", 0) or 0
        if scatter > 0:
            report.not_modelled(f"{where}.refresh_manager.scatter_interval",
                                f"{scatter}: node i at (i + 1) x {scatter}; here spread evenly over nREFI")
        return {"all_bank": {"command": "REFab", "interval": "nREFI"}}, {"refresh": "all_bank",
                                                                         "refresh_stagger": scatter > 0}
    if impl in ("PerBank", "HBM34PerBankRefresh"):
        if "REFpb" not in commands:
            raise ConfigError(f"{path}: {where}.refresh_manager: {impl} needs REFpb")
        key = "nREFIpb" if "nREFIpb" in timing else "nREFI"
        report.note(f"{where}.refresh_manager", f"{impl}: each bank once per {key} x banks, staggered in bank "
                                                "order")
        return ({"per_bank": {"command": "REFpb", "interval": f"{key} * {banks}"}},
                {"refresh": "per_bank", "refresh_stagger": True})
    if impl == "NoRefresh":
        return {}, {"refresh": "none", "refresh_stagger": True}
    raise ConfigError(f"{path}: {where}.refresh_manager.impl: {impl!r}: pimdram models AllBank, PerBank and "
                      "NoRefresh")


def _fraction_above(fraction, size):
    """A watermark whose pimdram threshold ceil(f * size) is Ramulator's `count > fraction * size`."""
    return (math.floor(fraction * size + 1e-9) + 1) / size


def _fraction_below(fraction, size):
    """A watermark whose pimdram threshold int(f * size) is Ramulator's `count < fraction * size`."""
    return (math.ceil(fraction * size - 1e-9) - 1) / size


def _policy(path, c, report, where):
    rq = int(c.get("read_buffer_size", 32))
    wq = int(c.get("write_buffer_size", 32))
    high = float(c.get("wr_high_watermark", 0.8))
    low = float(c.get("wr_low_watermark", 0.2))
    # a request leaves the read or write buffer when its ACT issues (Ramulator's active buffer)
    out = {"read_queue": rq, "write_queue": wq, "bank_queue": 0, "leave_queue_at": "activate"}
    scheduler = (c.get("scheduler") or {}).get("impl", "FRFCFS")
    if scheduler == "FRFCFS":
        # ready first, then oldest, whatever the command (row hits have no priority)
        out["scheduler"] = "first_ready"
    elif scheduler == "FRFCFS-RowHit":
        out["scheduler"] = "frfcfs"
        report.note(f"{where}.scheduler", "FRFCFS-RowHit: pimdram's frfcfs issues row hits first")
    else:
        raise ConfigError(f"{path}: {where}.scheduler.impl: {scheduler!r}: pimdram models FRFCFS")
    policy = c.get("row_policy") or {}
    if policy.get("impl", "Open") == "Open":
        out["row_policy"] = "open"
    elif policy.get("impl") == "ClosedCAP":
        out["row_policy"] = "closed"
        report.not_modelled(f"{where}.row_policy", f"ClosedCAP (cap {policy.get('cap', 4)}): closes a row after "
                                                   "cap accesses; here after the last queued hit")
    else:
        raise ConfigError(f"{path}: {where}.row_policy.impl: {policy.get('impl')!r}: pimdram models Open and "
                          "ClosedCAP")
    out["write_high_watermark"] = min(1.0, _fraction_above(high, wq))
    out["write_low_watermark"] = max(0.0, min(out["write_high_watermark"], _fraction_below(low, wq)))
    if "priority_buffer_size" in c:
        report.not_modelled(f"{where}.priority_buffer_size", "refreshes are not queued here")
    return out


def _address_mapping(path, mapper, channel_mapper, std, counts, n_channels, report, where):
    """Ramulator's channel mapper and address mapper as one pimdram mapping, MSB first."""
    impl = mapper.get("impl", "RoBaRaCoCh")
    levels = std["levels"]
    bits = {lv: int(counts[i]).bit_length() - 1 for i, lv in enumerate(levels) if lv != "Channel"}
    bits["Column"] = (int(counts[-1]) // std["prefetch"]).bit_length() - 1
    below = [lv for lv in levels[1:-1]]          # levels 1 .. Row in Ramulator's order
    if impl == "RoBaRaCoCh":
        # column lowest, then levels 1 .. Row upwards
        intra = list(reversed(below)) + ["Column"]
    elif impl == "ChRaBaRoCo":
        intra = below + ["Column"]
    else:
        raise ConfigError(f"{path}: {where}.addr_mapper.impl: {impl!r}: pimdram models RoBaRaCoCh and "
                          "ChRaBaRoCo")
    cm = channel_mapper.get("impl", "CacheLineInterleave")
    if cm != "CacheLineInterleave":
        raise ConfigError(f"{path}: memory_system.channel_mapper.impl: {cm!r}: pimdram models "
                          "CacheLineInterleave")
    interleave = int(channel_mapper.get("interleave_bits", 0) or 0)
    fields = [[LEVEL_NAMES.get(lv, lv.lower()), bits[lv]] for lv in intra]
    if n_channels & (n_channels - 1):
        raise ConfigError(f"{path}: memory_system.controllers: {n_channels} channels; CacheLineInterleave "
                          "needs a power of two")
    ch_bits = int(n_channels).bit_length() - 1
    if ch_bits:
        # the channel field sits `interleave` bits above the access offset: the intra-channel
        # address is the byte address with those bits taken out
        out, need, inserted = [], interleave, False
        for f, b in reversed(fields):          # LSB first
            if not inserted and b > need:
                if need:
                    out.append([f, need])
                out.append(["channel", ch_bits])
                out.append([f, b - need])
                inserted, need = True, 0
                continue
            out.append([f, b])
            if not inserted:
                need -= b
        if not inserted:
            out.append(["channel", ch_bits])
        fields = list(reversed(out))
    merged = []
    for f, b in fields:
        if b <= 0:
            continue
        if merged and merged[-1][0] == f:
            merged[-1][1] += b
        else:
            merged.append([f, b])
    return merged


def _from_v20(path, data, report):
    """A Ramulator 2.0-style `MemorySystem:` as the 2.1 exported form, its DRAM presets resolved by
    the installed `ramulator` Python package (Ramulator 2.1)."""
    ms = data["MemorySystem"]
    if not isinstance(ms, dict):
        raise ConfigError(f"{path}: MemorySystem: expected a mapping")
    dram = ms.get("DRAM") or {}
    standard = dram.get("impl")
    org = dict(dram.get("org") or {})
    timing = dict(dram.get("timing") or {})
    n_channels = org.pop("channel", 1)
    try:
        import ramulator.dram as rdram
    except ImportError:
        raise ConfigError(f"{path}: MemorySystem.DRAM names Ramulator presets ({org.get('preset')}, "
                          f"{timing.get('preset')}), whose values live in Ramulator's code: install Ramulator "
                          "2.1's Python package, or export the configuration with `python -m ramulator export` "
                          "and import that file") from None
    cls = getattr(rdram, str(standard), None)
    if cls is None:
        raise ConfigError(f"{path}: MemorySystem.DRAM.impl: {standard!r} is not a Ramulator 2.1 standard")
    overrides = {k: v for k, v in {**org, **timing}.items() if k != "preset"}
    try:
        resolved = cls(org_preset=org.get("preset"), timing_preset=timing.get("preset"), **overrides).to_config()
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{path}: MemorySystem.DRAM: Ramulator 2.1 cannot resolve it: {exc}") from None
    ctl = dict(ms.get("Controller") or {})
    impl = {"Generic": STANDARDS.get(standard, {}).get("controllers", ("GenericDDR",))[0]}.get(ctl.get("impl"),
                                                                                                ctl.get("impl"))
    controller = {"impl": impl, "dram": resolved,
                  "scheduler": {"impl": (ctl.get("Scheduler") or {}).get("impl", "FRFCFS")},
                  "refresh_manager": {"impl": (ctl.get("RefreshManager") or {}).get("impl", "AllBank")},
                  "row_policy": _v20_row_policy(ctl.get("RowPolicy")),
                  "addr_mapper": {"impl": (ms.get("AddrMapper") or {}).get("impl", "RoBaRaCoCh")}}
    for key in ("plugins",):
        if ctl.get(key):
            controller["plugins"] = ctl[key]
    report.note("MemorySystem.DRAM", "presets resolved by the installed Ramulator 2.1 Python package")
    return {"impl": ms.get("impl"), "clock_ratio": ms.get("clock_ratio", 1),
            "channel_mapper": {"impl": "CacheLineInterleave"}, "controllers": [controller] * int(n_channels)}


def _v20_row_policy(policy):
    impl = (policy or {}).get("impl", "OpenRowPolicy")
    if impl in ("OpenRowPolicy", "Open"):
        return {"impl": "Open"}
    if impl in ("ClosedRowPolicy", "ClosedCAP"):
        return {"impl": "ClosedCAP", "cap": (policy or {}).get("cap", 4)}
    return {"impl": impl}
