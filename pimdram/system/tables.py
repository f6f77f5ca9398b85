"""The statistics tables of a kernel replay (docs/stats-format.md): kernels, run, layers, steps,
energy by device and kind, the PIM memories' command totals, and the summary row."""
import math

import numpy as np

from ..stats import schema, standard_table
from .timing import ENERGY_KINDS


def kernel_tables(kt, rows, makespan_ns, tck, wall, pim_mems, symmetry, command_names, overcommitted):
    """(tables by name, summary dict) from `rows` = (kernel record, start ns, end ns, KernelTiming)."""
    to_cycles = lambda ns: int(math.ceil(ns / tck - 1e-9))
    k_cols = {c: [] for c, _, _ in schema.standard_columns(schema.KERNELS)}
    for k, start, end, t in rows:
        k_cols["id"].append(k["id"])
        k_cols["name"].append(k["name"])
        k_cols["layer"].append(-1 if k.get("layer") is None else k["layer"])
        k_cols["step"].append(k.get("step", 0))
        k_cols["device"].append(k["device"])
        k_cols["start_cycle"].append(to_cycles(start))
        k_cols["end_cycle"].append(to_cycles(end))
        k_cols["start_ns"].append(start)
        k_cols["end_ns"].append(end)
        k_cols["flops"].append(k["flops"])
        k_cols["bytes"].append(k["bytes_read"] + k["bytes_written"])
        k_cols["commands"].append(t.commands)
        k_cols["energy_j"].append(t.energy_j)
        for kind in ENERGY_KINDS:
            k_cols[f"energy_{kind}_j"].append(t.energy[kind])
        k_cols["source"].append(t.source)
        k_cols["channels_simulated"].append(t.channels_simulated)
        k_cols["channels_total"].append(t.channels_total)
    kernels = standard_table(schema.KERNELS, {c: np.asarray(v) for c, v in k_cols.items()})

    wl = kt.header["workload"]
    n_req = len(wl.get("requests", [])) or int(wl.get("batch", 0))
    tokens, decode_tokens = _tokens(kt, wl, n_req)
    seconds = makespan_ns * 1e-9
    decode_s = _span(rows, "decode")
    energy = math.fsum(k_cols["energy_j"])
    run = {
        "tokens": tokens, "tokens_per_s": tokens / seconds if seconds > 0 else math.nan,
        "kernels": len(rows),
        "kernels_simulated": k_cols["source"].count("simulated"),
        "kernels_reused": k_cols["source"].count("reused"),
        "kernels_modelled": k_cols["source"].count("model"),
        "kernels_fused": k_cols["source"].count("fused"),
        "symmetry": bool(symmetry),
        "decode_tokens": decode_tokens,
        "decode_seconds": decode_s,
        "decode_tokens_per_s": decode_tokens / decode_s if decode_s > 0 else math.nan,
        "prefill_seconds": _span(rows, "prefill"),
        "energy_j": energy,
        "energy_per_token_j": energy / tokens if tokens else math.nan,
        "overcommitted": bool(overcommitted),
    }
    total_bytes = int(sum(k_cols["bytes"]))
    summary_cols = {c: np.array([0]) for c, _, _ in schema.standard_columns(schema.SUMMARY)}
    summary_cols.update({
        "cycles": np.array([to_cycles(makespan_ns)]), "tck_ns": np.array([tck]),
        "simulated_seconds": np.array([seconds]), "requests": np.array([n_req]),
        "bytes_read": np.array([sum(k["bytes_read"] for k in kt.kernels)]),
        "bytes_written": np.array([sum(k["bytes_written"] for k in kt.kernels)]),
        "read_latency_mean": np.array([np.nan]), "write_latency_mean": np.array([np.nan]),
        "bandwidth": np.array([total_bytes / seconds if seconds > 0 else np.nan]),
        "peak_bandwidth": np.array([np.nan]), "energy_j": np.array([energy]),
        "wall_seconds": np.array([wall]), "requests_per_second": np.array([n_req / wall if wall > 0 else np.nan]),
    })
    tables = {schema.SUMMARY: standard_table(schema.SUMMARY, summary_cols)}
    tables[schema.CHANNELS] = _memory_rows(pim_mems, rows, command_names)
    tables[schema.KERNELS] = kernels
    tables[schema.RUN] = standard_table(schema.RUN, {c: np.array([v]) for c, v in run.items()})
    tables[schema.LAYERS] = _group_table(schema.LAYERS, "layer", k_cols, to_cycles)
    tables[schema.STEPS] = _group_table(schema.STEPS, "step", k_cols, to_cycles)
    tables[schema.DEVICE_ENERGY] = _device_energy(rows, kt.header["system"])
    summary = {c: v[0].item() for c, v in summary_cols.items()}
    summary.update(run)
    return tables, summary


def _tokens(kt, wl, n_req):
    """(tokens, decode tokens): a prefill trace counts the prompt tokens it processes; otherwise
    each request yields one token from its prefill and `speculation` per decode step."""
    if wl.get("phase") == "prefill":
        total = sum(int(r.get("prompt", 0)) for r in wl.get("requests", []))
        return total, 0
    spec = int(wl.get("speculation", 1))
    live = {}
    for k in kt.kernels:
        if k["op"] != "communication":
            live.setdefault((k.get("step", 0), k["phase"]), set()).update(k.get("requests", ()))
    decode = sum(len(r) or n_req for (_, phase), r in live.items() if phase == "decode") * spec
    prefill = sum(len(r) or n_req for (_, phase), r in live.items() if phase == "prefill")
    return prefill + decode, decode


def _span(rows, phase):
    """Seconds from the first start to the last end of the kernels of one phase (0 if none)."""
    times = [(s, e) for k, s, e, _ in rows if k["phase"] == phase]
    if not times:
        return 0.0
    return (max(e for _, e in times) - min(s for s, _ in times)) * 1e-9


def _device_energy(rows, system):
    """Energy by device (or link) and kind, one row per device or link that ran a kernel."""
    kinds = {**{n: d.get("kind", "") for n, d in system["devices"].items()},
             **{n: "link" for n in (system.get("links") or {})}}
    totals = {}
    for k, _, _, t in rows:
        acc = totals.setdefault(k["device"], dict.fromkeys(ENERGY_KINDS, 0.0))
        for kind in ENERGY_KINDS:
            acc[kind] += t.energy[kind]
    cols = {c: [] for c, _, _ in schema.standard_columns(schema.DEVICE_ENERGY)}
    for name, acc in totals.items():
        cols["device"].append(name)
        cols["kind"].append(kinds.get(name, ""))
        for kind in ENERGY_KINDS:
            cols[f"{kind}_j"].append(acc[kind])
        cols["total_j"].append(math.fsum(acc.values()))
    return standard_table(schema.DEVICE_ENERGY, {c: np.asarray(v, dtype=d) for c, d, _ in
                                                 schema.standard_columns(schema.DEVICE_ENERGY)
                                                 for v in [cols[c]]})


def _memory_rows(pim_mems, rows, command_names):
    """The channels table of a kernel replay: one row per PIM memory whose commands are those
    of the file's command-names, with its command totals over every kernel and channel."""
    spec_cols = schema.standard_columns(schema.CHANNELS, command_names)
    cols = {c: [] for c, _, _ in spec_cols}
    for i, (name, pm) in enumerate(pim_mems.items()):
        if pm.spec.command_names != list(command_names):
            continue
        totals = np.zeros(len(command_names))
        for _, _, _, t in rows:
            if t.memory == name and t.per_command is not None:
                totals += t.per_command
        for c, _, _ in spec_cols:
            cols[c].append(0)
        cols["channel"][-1] = i
        for j, n in enumerate(command_names):
            cols[schema.command_column(n)][-1] = int(totals[j])
        for c in cols:
            if "latency" in c:
                cols[c][-1] = float("nan")
        cols["energy_j"][-1] = math.fsum(t.energy_j for _, _, _, t in rows if t.memory == name)
    return standard_table(schema.CHANNELS, {c: np.asarray(v, dtype=d) for c, d, _ in spec_cols
                                            for v in [cols[c]]}, command_names=command_names)


def _group_table(name, key, k_cols, to_cycles):
    keys = np.asarray(k_cols[key])
    start = np.asarray(k_cols["start_ns"])
    end = np.asarray(k_cols["end_ns"])
    energy = np.asarray(k_cols["energy_j"], dtype=float)
    values = sorted(set(keys.tolist()))
    out = {key: [], "kernels": [], "start_cycle": [], "end_cycle": [], "energy_j": []}
    for v in values:
        m = keys == v
        out[key].append(v)
        out["kernels"].append(int(m.sum()))
        out["start_cycle"].append(to_cycles(start[m].min()))
        out["end_cycle"].append(to_cycles(end[m].max()))
        out["energy_j"].append(math.fsum(energy[m]))
    return standard_table(name, {c: np.asarray(v) for c, v in out.items()})
