"""The report of a stats file: `summarize` gathers the figures as plain data, `format_report` prints them."""
import json
import math

import numpy as np

from ..errors import FileFormatError
from . import schema
from .reader import open_stats

_LATENCY_STATS = ("mean", "p50", "p90", "p99", "max")
_CHANNEL_FIELDS = ("reads", "writes", "bytes_read", "bytes_written", "row_hits", "row_misses",
                   "row_conflicts", "busy_cycles") \
    + tuple(f"{k}_latency_{s}" for k in ("read", "write") for s in _LATENCY_STATS) + ("energy_j",)
_ENERGY_PARTS = ("activate_j", "read_j", "write_j", "refresh_j", "background_j")
_KERNEL_FIELDS = ("name", "layer", "device", "start_cycle", "end_cycle")
#: per-kernel interference figures (format 1.4)
_INTERFERENCE_FIELDS = ("interference_cycles", "interference_ns", "interference_conflicts", "blocked_cycles")
_ENERGY_KINDS = ("memory", "compute", "onchip", "communication")


def _plain(value):
    """A numpy scalar as Python; NaN and infinities as None (JSON has no NaN)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _columns(sf, table, names):
    """Columns `names` of `table`, or FileFormatError naming what is missing."""
    have = sf.columns(table)
    missing = [c for c in names if c not in have]
    if missing:
        raise FileFormatError(f"{sf.path}: table {table!r} lacks column(s) {', '.join(missing)}")
    return sf.table(table, columns=list(names))


# --- sections: each adds keys to the summary; optional ones run only if their table exists ----

def _run_section(sf, out):
    attrs = sf.attrs
    out.update({
        "file": str(sf.path),
        "format_version": ".".join(map(str, sf.format_version)),
        "generated_by": attrs.get(schema.ATTR_GENERATED_BY),
        "creation_date": attrs.get(schema.ATTR_CREATION_DATE),
        "trace_path": attrs[schema.ATTR_TRACE_PATH],
        "trace_sha256": attrs[schema.ATTR_TRACE_SHA256],
        "seed": attrs[schema.ATTR_SEED],
        "description": attrs.get("description", ""),
    })


def _summary_section(sf, out):
    names = [c for c, _, _ in schema.standard_columns(schema.SUMMARY)]
    table = _columns(sf, schema.SUMMARY, names)
    if len(table["cycles"]) != 1:
        raise FileFormatError(f"{sf.path}: table 'summary' must have one row, "
                              f"has {len(table['cycles'])}")
    summary = {c: _plain(a[0]) for c, a in table.items()}
    out.update(summary)
    accesses = summary["row_hits"] + summary["row_misses"] + summary["row_conflicts"]
    out["row_hit_rate"] = _ratio(summary["row_hits"], accesses)
    out["bandwidth_utilization"] = _ratio(summary["bandwidth"], summary["peak_bandwidth"])
    # a request replay's trace lines are split into accesses of the memory's access size
    out["accesses"] = summary["reads"] + summary["writes"]
    organization = sf.config.get("organization") if isinstance(sf.config, dict) else None
    size = organization.get("access_bytes") if isinstance(organization, dict) else None
    out["access_bytes"] = int(size) if isinstance(size, (int, float)) and size > 0 else None


def _channels_section(sf, out):
    names = sf.command_names
    have = sf.columns(schema.CHANNELS)
    listed = [n for n in names if schema.command_column(n) in have]
    # cmd_ columns not named in command-names still count (a writer bug should not hide commands)
    unlisted = [c[len("cmd_"):] for c in have
                if c.startswith("cmd_") and c[len("cmd_"):] not in listed]
    commands = listed + unlisted
    table = _columns(sf, schema.CHANNELS,
                     ["channel"] + [schema.command_column(n) for n in commands] + list(_CHANNEL_FIELDS))
    cycles = out.get("cycles")
    rows = []
    for i in range(len(table["channel"])):
        row = {"channel": _plain(table["channel"][i])}
        row.update({f: _plain(table[f][i]) for f in _CHANNEL_FIELDS})
        accesses = row["row_hits"] + row["row_misses"] + row["row_conflicts"]
        row["row_hit_rate"] = _ratio(row["row_hits"], accesses)
        row["busy_fraction"] = _ratio(row["busy_cycles"], cycles)
        row["commands"] = {n: _plain(table[schema.command_column(n)][i]) for n in commands}
        rows.append(row)
    out["commands"] = {n: int(table[schema.command_column(n)].sum()) for n in commands}
    out["channels"] = rows
    for kind in ("read", "write"):
        column = table[f"{kind}_latency_max"]
        finite = column[np.isfinite(column)]
        out[f"{kind}_latency_max"] = float(finite.max()) if len(finite) else None


def _energy_section(sf, out):
    table = _columns(sf, schema.ENERGY, _ENERGY_PARTS + ("total_j",))
    out["energy_breakdown"] = {part: float(table[part].sum()) for part in _ENERGY_PARTS + ("total_j",)}


def _bandwidth_section(sf, out):
    table = _columns(sf, schema.BANDWIDTH, ["step", "bytes_read", "bytes_written"])
    window = sf.table_attrs(schema.BANDWIDTH).get("window")
    series = {"window_cycles": window, "windows": len(table["step"]), "max_bandwidth": None}
    tck_ns = out.get("tck_ns")
    if window and tck_ns and len(table["step"]):
        per_window = table["bytes_read"] + table["bytes_written"]
        series["max_bandwidth"] = float(per_window.max()) / (window * tck_ns * 1e-9)
    out["bandwidth_series"] = series


def _command_log_section(sf, out):
    out["command_log_rows"] = sf.nrows(schema.COMMAND_LOG)


def _kernels_section(sf, out):
    table = _columns(sf, schema.KERNELS, _KERNEL_FIELDS)
    out["kernels"] = [{f: _plain(table[f][i]) for f in _KERNEL_FIELDS}
                      for i in range(len(table["name"]))]
    have = set(sf.columns(schema.KERNELS))
    if _INTERFERENCE_FIELDS[0] in have:           # since 1.4
        extra = sf.table(schema.KERNELS, columns=["device"] + list(_INTERFERENCE_FIELDS))
        for row, i in zip(out["kernels"], range(len(out["kernels"]))):
            row.update({f: _plain(extra[f][i]) for f in _INTERFERENCE_FIELDS})
        out["interference_by_device"] = _interference_by_device(extra)
    if {"start_ns", "end_ns", "energy_j"} <= have:
        cols = ["name", "device", "start_ns", "end_ns", "energy_j"] + (["busy_ns"] if "busy_ns" in have else [])
        out["kernels_by_kind"] = kernels_by_kind(sf.table(schema.KERNELS, columns=cols))


def kernels_by_kind(kernels):
    """Kernel-table columns (name, device, busy_ns or else start_ns and end_ns, energy_j) summed by
    kernel kind (llm.kernels.kernel_kind) and device: [{kind, device, kernels, busy_seconds,
    energy_j}], in kind order, then by device in order of first appearance. busy_ns (format 1.2)
    sums a template kernel's time over every step it ran in."""
    from ..llm.kernels import REPORT_KINDS, kernel_kind

    groups = {}
    if "busy_ns" in kernels:
        seconds = np.asarray(kernels["busy_ns"], dtype=float) * 1e-9
    else:
        seconds = (np.asarray(kernels["end_ns"], dtype=float) - np.asarray(kernels["start_ns"], dtype=float)) * 1e-9
    energy = np.asarray(kernels["energy_j"], dtype=float)
    kinds = {}
    for i, (name, device) in enumerate(zip(kernels["name"].tolist(), kernels["device"].tolist())):
        kind = kinds.get(name) or kinds.setdefault(name, kernel_kind(name))
        groups.setdefault((kind, device), []).append(i)
    order = sorted(groups, key=lambda key: REPORT_KINDS.index(key[0]))
    return [{"kind": kind, "device": device, "kernels": len(groups[kind, device]),
             "busy_seconds": math.fsum(seconds[groups[kind, device]]),
             "energy_j": math.fsum(energy[groups[kind, device]])} for kind, device in order]


def _interference_by_device(kernels):
    """[{device, kernels, interference_ns, interference_conflicts, blocked_cycles}] of the devices
    whose kernels lost time to another device's traffic (format 1.4)."""
    out = {}
    for i, device in enumerate(kernels["device"].tolist()):
        if kernels["interference_ns"][i] or kernels["interference_conflicts"][i] or kernels["blocked_cycles"][i]:
            d = out.setdefault(device, {"device": device, "kernels": 0, "interference_ns": 0.0,
                                        "interference_conflicts": 0, "blocked_cycles": 0})
            d["kernels"] += 1
            for f in ("interference_ns", "interference_conflicts", "blocked_cycles"):
                d[f] += _plain(kernels[f][i])
    return list(out.values())


def _kernel_run_section(sf, out):
    """Kernel replays (format 1.1): tokens per second and where the kernel times came from; since
    1.2 also decode throughput, prefill time and energy per token (absent columns read as None)."""
    have = set(sf.columns(schema.RUN))
    names = [c for c, _, _ in schema.standard_columns(schema.RUN)]
    table = _columns(sf, schema.RUN, [c for c in names if c in have])
    out.update({c: (_plain(table[c][0]) if c in table else None) for c in names if c != "kernels"})
    out["kernel_count"] = _plain(table["kernels"][0])
    if out.get("interference_ns") is not None:
        out["interference_s"] = out["interference_ns"] * 1e-9
    out["warnings"] = json.loads(sf.attrs.get("warnings", "[]"))


def _device_energy_section(sf, out):
    """Kernel replays (1.2): energy by device and by kind."""
    have = set(sf.columns(schema.DEVICE_ENERGY))
    later = {"busy_ns", "static_w", "static_j"}     # since 1.3 and 1.5: absent from older files
    names = [c for c, _, _ in schema.standard_columns(schema.DEVICE_ENERGY) if c in have or c not in later]
    table = _columns(sf, schema.DEVICE_ENERGY, names)
    rows = [{c: _plain(table[c][i]) for c in names} for i in range(len(table["device"]))]
    out["device_energy"] = rows
    out["energy_by_kind"] = {kind: _plain(float(np.sum(table[f"{kind}_j"]))) for kind in _ENERGY_KINDS}


_REQUIRED_SECTIONS = (_run_section, _summary_section, _channels_section)
#: table name -> section, for tables a file may or may not have
_OPTIONAL_SECTIONS = {
    schema.ENERGY: _energy_section,
    schema.BANDWIDTH: _bandwidth_section,
    schema.COMMAND_LOG: _command_log_section,
    schema.KERNELS: _kernels_section,
    schema.RUN: _kernel_run_section,
    schema.DEVICE_ENERGY: _device_energy_section,
}


def _serve_section(sf, out):
    """Served streams (format 1.6): the serve_summary row, the KV memories and the checks."""
    names = [c for c, _, _ in schema.standard_columns(schema.SERVE_SUMMARY)]
    table = _columns(sf, schema.SERVE_SUMMARY, names)
    if len(table["requests"]) != 1:
        raise FileFormatError(f"{sf.path}: table 'serve_summary' must have one row, has {len(table['requests'])}")
    out["kind"] = "serve"
    out.update({c: _plain(a[0]) for c, a in table.items()})
    if schema.KV_MEMORIES in sf.tables:
        names = [c for c, _, _ in schema.standard_columns(schema.KV_MEMORIES)]
        mems = _columns(sf, schema.KV_MEMORIES, names)
        out["kv_memories"] = [{c: _plain(mems[c][i]) for c in names} for i in range(len(mems["memory"]))]
    serve = sf.config.get("serve", {}) if isinstance(sf.config, dict) else {}
    out["scheduler"] = serve.get("scheduler")
    out["model"] = serve.get("model")
    system = sf.config.get("system") if isinstance(sf.config, dict) else None
    out["system"] = system.get("name") if isinstance(system, dict) else None


def summarize_file(sf):
    """The report's figures from an open `StatsFile`, as JSON-ready plain data."""
    out = {}
    if schema.SERVE_SUMMARY in sf.tables:
        # a served stream (pimdram serve): no command-level tables of its own
        _run_section(sf, out)
        _serve_section(sf, out)
        return out
    for section in _REQUIRED_SECTIONS:
        section(sf, out)
    tables = set(sf.tables)
    for table, section in _OPTIONAL_SECTIONS.items():
        if table in tables:
            section(sf, out)
    return out


def summarize(path):
    """The report's figures for the stats file at `path` (see `summarize_file`)."""
    with open_stats(path) as sf:
        return summarize_file(sf)


# --- text ------------------------------------------------------------------------------------

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"),
       (1e-9, "n"), (1e-12, "p"))


def _si(value, unit, digits=3):
    if value is None:
        return "-"
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in _SI:
        if abs(value) >= scale:
            break
    return f"{value / scale:.{digits}g} {prefix}{unit}"


def _int(value):
    return "-" if value is None else f"{value:,}"


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}%"


def _small_pct(value):
    """A relative error as a percentage with three significant digits (0.00123%)."""
    return "-" if value is None else f"{100 * value:.3g}%"


def _num(value, digits=1):
    return "-" if value is None else f"{value:,.{digits}f}"


def _grid(headers, rows, indent="  "):
    """Right-aligned columns (the first left-aligned)."""
    cells = [list(headers)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append(indent + "  ".join(parts).rstrip())
    return lines


def format_report(s, full_kernels=False):
    """`summarize`'s result as a readable multi-line text. A kernel replay's kernels are summed by
    kind and device; `full_kernels` adds the table of every kernel."""
    lines = [f"pimdram stats {s['file']}",
             f"  format {s['format_version']}, written by {s['generated_by']} on {s['creation_date']}",
             f"  {'requests' if s.get('kind') == 'serve' else 'trace'} {s['trace_path']} "
             f"(sha256 {s['trace_sha256'][:16]}…), seed {s['seed']}"]
    if s.get("description"):
        lines.append(f"  {s['description']}")
    if s.get("kind") == "serve":
        return "\n".join(lines + _serve_lines(s)) + "\n"

    simulated = f"{_int(s['cycles'])} cycles × {s['tck_ns']:g} ns = {_si(s['simulated_seconds'], 's')}"
    data = (f"{_int(s['bytes_read'])} B read ({_si(s['bytes_read'], 'B')}), "
            f"{_int(s['bytes_written'])} B written ({_si(s['bytes_written'], 'B')})")
    if "tokens_per_s" in s:
        # a kernel replay: no request-level row-buffer, bandwidth or latency figures to show
        lines += ["", "Run",
                  f"  simulated   {simulated}",
                  f"  requests    {_int(s['requests'])} in the batch",
                  f"  data        {data} by the kernels",
                  f"  wall time   {_si(s['wall_seconds'], 's')}"]
        return "\n".join(lines + _kernel_lines(s, full_kernels)) + "\n"

    size = s.get("access_bytes")
    accesses = f"{_int(s.get('accesses'))} accesses" + (f" of {size} B" if size else "")
    lines += ["", "Run",
              f"  simulated   {simulated}",
              f"  requests    {_int(s['requests'])} (trace lines) = {accesses}: "
              f"{_int(s['reads'])} reads, {_int(s['writes'])} writes",
              f"  data        {data}",
              f"  wall time   {_si(s['wall_seconds'], 's')} ({_num(s['requests_per_second'], 0)} requests/s)"]

    lines += ["", "Row buffer (per access)",
              f"  hits {_int(s['row_hits'])}, misses {_int(s['row_misses'])}, "
              f"conflicts {_int(s['row_conflicts'])}: hit rate {_pct(s['row_hit_rate'])}"]

    lines += ["", "Bandwidth",
              f"  achieved {_si(s['bandwidth'], 'B/s')} of peak {_si(s['peak_bandwidth'], 'B/s')} "
              f"({_pct(s['bandwidth_utilization'])})"]
    series = s.get("bandwidth_series")
    if series and series["max_bandwidth"] is not None:
        lines.append(f"  busiest window of {_int(series['window_cycles'])} cycles: "
                     f"{_si(series['max_bandwidth'], 'B/s')} ({_int(series['windows'])} windows)")

    lines += ["", "Latency (cycles, per access)",
              f"  read  mean {_num(s['read_latency_mean'])}, max {_num(s['read_latency_max'], 0)}",
              f"  write mean {_num(s['write_latency_mean'])}, max {_num(s['write_latency_max'], 0)}"]
    rows = []
    for ch in s["channels"]:
        for kind in ("read", "write"):
            rows.append([str(ch["channel"]), kind]
                        + [_num(ch[f"{kind}_latency_{st}"], 1 if st == "mean" else 0)
                           for st in _LATENCY_STATS])
    lines += _grid(["channel", "kind", "mean", "p50", "p90", "p99", "max"], rows)

    lines += ["", "Commands (all channels)"]
    if s["commands"]:
        lines += _grid(["command", "count"], [[n, _int(c)] for n, c in s["commands"].items()])
    else:
        lines.append("  none recorded")

    lines += ["", "Channels"]
    rows = [[str(ch["channel"]), _int(ch["reads"]), _int(ch["writes"]), _si(ch["bytes_read"], "B"),
             _si(ch["bytes_written"], "B"), _pct(ch["row_hit_rate"]), _pct(ch["busy_fraction"]),
             _si(ch["energy_j"], "J")] for ch in s["channels"]]
    lines += _grid(["channel", "read accesses", "write accesses", "bytes read", "bytes written", "row hits",
                    "bus busy", "energy"], rows)

    lines += ["", "Energy", f"  total {_si(s['energy_j'], 'J')}"]
    parts = s.get("energy_breakdown")
    if parts:
        total = parts["total_j"]
        lines += _grid(["part", "energy", "share"],
                       [[p[:-2], _si(parts[p], "J"), _pct(_ratio(parts[p], total))]
                        for p in _ENERGY_PARTS])

    if "command_log_rows" in s:
        lines += ["", f"Command log: {_int(s['command_log_rows'])} commands"]

    lines += _kernel_lines(s, full_kernels)
    return "\n".join(lines) + "\n"


def _kernel_lines(s, full_kernels):
    """The kernel-replay part of the report: tokens per second, PIM commands and energy, kernels."""
    lines = []
    if "tokens_per_s" in s:
        lines += ["", "Kernel replay",
                  f"  tokens      {_int(s['tokens'])} in {_si(s['simulated_seconds'], 's')}: "
                  f"{_num(s['tokens_per_s'])} tokens/s",
                  f"  kernels     {_int(s['kernel_count'])}: {_int(s['kernels_simulated'])} simulated, "
                  f"{_int(s['kernels_reused'])} reused (same inputs), {_int(s['kernels_modelled'])} modelled"
                  + (f", {_int(s['kernels_fused'])} fused" if s.get("kernels_fused") else "")
                  + ("" if s.get("symmetry") is False else "; symmetric channels simulated once"),
                  f"  energy      {_si(s['energy_j'], 'J')}"
                  + (f", {_si(s['energy_per_token_j'], 'J')} per token" if s.get("energy_per_token_j") else "")
                  + (f"; static {_si(s['static_energy_j'], 'J')} ({_si(s['static_power_w'], 'W')} over the run)"
                     if s.get("static_energy_j") is not None else "")]
        if s.get("decode_tokens"):
            lines.append(f"  decode      {_int(s['decode_tokens'])} tokens in {_si(s['decode_seconds'], 's')}: "
                         f"{_num(s['decode_tokens_per_s'])} tokens/s")
        if s.get("prefill_seconds"):
            lines.append(f"  prefill     {_si(s['prefill_seconds'], 's')}")
        for w in s.get("warnings") or ():
            lines.append(f"  warning     {w}")
        devices = s.get("device_energy")
        if devices and devices[0].get("busy_ns") is not None:
            run = s["simulated_seconds"]
            static = devices[0].get("static_w") is not None
            lines += ["", "Devices (busy: time running at least one kernel; links: data in flight"
                          + ("; static: power drawn idle or busy" if static else "") + ")"]
            lines += _grid(["device", "kind", "busy", "of run"] + (["static"] if static else []),
                           [[d["device"], d["kind"], _si(d["busy_ns"] * 1e-9, "s"),
                             _pct(_ratio(d["busy_ns"] * 1e-9, run))] + ([_si(d["static_w"], "W")] if static else [])
                            for d in devices if d["kind"] != "memory"])
            if s.get("overlap_ns") is not None:
                lines.append(f"  overlap     {_si(s['overlap_ns'] * 1e-9, 's')} "
                             f"({_pct(_ratio(s['overlap_ns'] * 1e-9, run))} of the run) with two or more "
                             f"devices busy at once")
        if s.get("interference_by_device"):
            lines += ["", "Interference (time kernels lost to another device's traffic in a shared memory; "
                          "conflicts it caused; cycles blocked-mode PIM held a channel, per channel)"]
            lines += _grid(["device", "kernels", "lost", "conflicts", "blocked cycles"],
                           [[d["device"], _int(d["kernels"]), _si(d["interference_ns"] * 1e-9, "s"),
                             _int(d["interference_conflicts"]), _int(d["blocked_cycles"])]
                            for d in s["interference_by_device"]])
            lines.append(f"  total       {_si(s.get('interference_s') or 0.0, 's')} lost to interference")
        if devices:
            static = devices[0].get("static_j") is not None          # 1.5: static power over the run
            lines += ["", "Energy by device and kind" + (" (static: static power x the run, idle or busy)"
                                                         if static else "")]
            lines += _grid(["device", "kind"] + list(_ENERGY_KINDS) + (["static"] if static else []) + ["total"],
                           [[d["device"], d["kind"]] + [_si(d[f"{k}_j"], "J") for k in _ENERGY_KINDS]
                            + ([_si(d["static_j"], "J")] if static else []) + [_si(d["total_j"], "J")]
                            for d in devices])
        used = {n: c for n, c in s["commands"].items() if c}
        if used:
            lines += ["", "PIM memory commands (all channels)"]
            lines += _grid(["command", "count"], [[n, _int(c)] for n, c in used.items()])
    groups = s.get("kernels_by_kind")
    if groups:
        run = s.get("simulated_seconds")
        energy = math.fsum(g["energy_j"] for g in groups)
        lines += ["", "Kernels by kind and device (busy: summed kernel time, as a share of the run; "
                      "devices overlap)"]
        lines += _grid(["kind", "device", "kernels", "busy", "of run", "energy", "share"],
                       [[g["kind"], g["device"], _int(g["kernels"]), _si(g["busy_seconds"], "s"),
                         _pct(_ratio(g["busy_seconds"], run)), _si(g["energy_j"], "J"),
                         _pct(_ratio(g["energy_j"], energy))] for g in groups])
    kernels = s.get("kernels")
    if kernels and (full_kernels or not groups):
        lines += ["", f"Kernels ({len(kernels)})"]
        lines += _grid(["name", "layer", "device", "start", "end", "cycles"],
                       [[k["name"], str(k["layer"]), str(k["device"]), _int(k["start_cycle"]),
                         _int(k["end_cycle"]), _int(k["end_cycle"] - k["start_cycle"])]
                        for k in kernels])
    elif kernels:
        lines += ["", f"{_int(len(kernels))} kernels: `pimdram report --kernels` lists each"]
    return lines


def _serve_lines(s):
    """The report of a served stream (pimdram serve)."""
    sched = s.get("scheduler") or {}
    lines = ["", "Served stream" + (f" ({s['model']} on {s['system']})" if s.get("model") else ""),
             f"  requests    {_int(s['requests_completed'])} of {_int(s['requests'])} completed: "
             f"{_int(s['prompt_tokens'])} prompt and {_int(s['output_tokens'])} output tokens, "
             f"{_int(s['preemptions'])} preemptions",
             f"  simulated   {_si(s['simulated_seconds'], 's')} from the first arrival to the last finish; "
             f"{_int(s['steps'])} steps ({_int(s['prefill_steps'])} prefill, {_int(s['decode_steps'])} decode) "
             f"busy {_si(s['busy_seconds'], 's')}",
             f"  throughput  {_num(s['throughput_tokens_per_s'])} output tokens/s, "
             f"{_num(s['requests_per_s'], 2)} requests/s"]
    slos = [f"TTFT <= {_si(s['slo_ttft_s'], 's')}" if s.get("slo_ttft_s") is not None else None,
            f"TPOT <= {_si(s['slo_tpot_s'], 's')}" if s.get("slo_tpot_s") is not None else None]
    slos = [x for x in slos if x]
    if slos:
        lines.append(f"  goodput     {_num(s['goodput_tokens_per_s'])} output tokens/s: {_int(s['slo_met_requests'])} "
                     f"of {_int(s['requests_completed'])} requests meet {' and '.join(slos)}")
    else:
        lines.append("  goodput     - (no SLO given: serve --slo-ttft / --slo-tpot)")
    lines.append(f"  energy      {_si(s['energy_j'], 'J')} ({_si(s['step_energy_j'], 'J')} in steps, "
                 f"{_si(s['idle_energy_j'], 'J')} static power while idle): "
                 f"{_si(s['energy_per_token_j'], 'J')} per output token")
    if sched:
        lines.append(f"  scheduler   max batch {sched.get('max_batch')}, max tokens {sched.get('max_tokens')}, "
                     f"{sched.get('prefill')} prefill, {sched.get('preemption')} preemption")
    lines += ["", "Latency (nearest-rank percentiles; TPOT of requests with more than one output token)"]
    lines += _grid(["", "mean", "p50", "p90", "p99"],
                   [[name] + [_si(s[f"{key}_{q}_s"], "s") for q in ("mean", "p50", "p90", "p99")]
                    for name, key in (("TTFT", "ttft"), ("TPOT", "tpot"))])
    lines.append(f"  end to end  p50 {_si(s['latency_p50_s'], 's')}, p99 {_si(s['latency_p99_s'], 's')}")
    lines += ["", f"KV cache (blocks of {_int(s['block_size'])} tokens, {_si(s['kv_block_bytes'], 'B')} each)",
              f"  capacity    {_int(s['kv_blocks'])} blocks ({_si(s['kv_capacity_bytes'], 'B')}); peak "
              f"{_int(s['kv_peak_blocks'])} blocks ({_si(s['kv_peak_bytes'], 'B')}, "
              f"{_pct(_ratio(s['kv_peak_blocks'], s['kv_blocks']))})"]
    mems = s.get("kv_memories") or []
    if mems:
        lines += _grid(["memory", "capacity", "weights", "activations", "KV share", "KV capacity", "KV peak"],
                       [[m["memory"], _si(m["capacity_bytes"], "B"), _si(m["weights_bytes"], "B"),
                         _si(m["activations_bytes"], "B"), _pct(m["share"]), _si(m["kv_capacity_bytes"], "B"),
                         _si(m["kv_peak_bytes"], "B")] for m in mems])
    lines += ["", "Step times",
              f"  replays     {_int(s['step_replays'])} kernel replays for {_int(s['steps'])} steps; "
              f"wall time {_si(s['wall_seconds'], 's')}"]
    if s.get("composition_checks"):
        lines.append(f"  checks      {_int(s['composition_checks'])} steps replayed exactly: composed time off by "
                     f"at most {_small_pct(s['composition_error_max'])} "
                     f"(mean {_small_pct(s['composition_error_mean'])})")
    else:
        lines.append("  checks      none")
    return lines
