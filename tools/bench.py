#!/usr/bin/env python3
"""Benchmark pimdram's replay and compare its cycle counts with DRAMsim3's.

    python tools/bench.py                      # speed: 3 traces x 4 standards, 3 runs each
    python tools/bench.py --compare            # cycles against DRAMsim3's and Ramulator 2.1's results
    python tools/bench.py --requests 200000 --repeat 5 --memories ddr4_3200 hbm2_2gbps
    python tools/bench.py --pim                # one layer of attention on one AttAcc stack
    python tools/bench.py --generation         # a whole GPT-3 175B generation on dgx-attacc
    python tools/bench.py --validate           # `pimdram validate all`, full form (target: under 10 min)
    python tools/bench.py --interference       # a GPT-3 175B decode step on NeuPIMs with interference (target: 30 s)
    python tools/bench.py --against ../old     # an older checkout's runs alternate with ours
    python tools/bench.py --dramsim3 BIN       # the six shared runs, DRAMsim3's runs alternating with ours
    python tools/bench.py --sweep              # a 200-point sweep on 1 and on 2 worker processes
    python tools/bench.py --api                # pimdram.MemorySystem: batches and one at a time vs replay

Each run is a fresh process (so peak memory is that run's own); the figure reported is the
median over --repeat runs of the replay's wall time (parsing, simulation and writing the stats
file; not the interpreter start-up). Traces are the deterministic synthetic ones of
pimdram.trace.synthetic, written once under --traces.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEMORIES = ("ddr4_3200", "hbm2_2gbps", "hbm3_6.4gbps", "gddr6_14gbps")
COMPARE = {"HBM2_8Gb_x128": "dramsim3_hbm2_8gb_x128", "DDR4_8Gb_x8_3200": "dramsim3_ddr4_8gb_x8_3200"}
REFERENCE_CSV = HERE / "dramsim3_results.csv"
RAMULATOR2_CSV = HERE / "ramulator2_results.csv"     # preset column: the configs/compare preset

RUN_ONE = r"""
import json, resource, sys, time
from pimdram.replay import replay_requests
cpu = time.process_time()
r = replay_requests(sys.argv[1], sys.argv[2], sys.argv[3], overwrite=True)
s = r.summary
s["cpu_seconds"] = time.process_time() - cpu
s["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(s))
"""


def fresh_run(code, *args, what, env=None, cwd=None):
    """Run the snippet `code` with `args` in a fresh interpreter; the JSON of its last output line.
    `what` names the run in the error if it fails."""
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_once(trace, memory, workdir, tree=None):
    """One replay in a fresh process; `tree` runs another checkout's pimdram (built in place)."""
    out = Path(workdir) / "bench.h5"
    env = dict(os.environ, PYTHONPATH=str(tree)) if tree else None
    return fresh_run(RUN_ONE, trace, memory, out, what=f"replay of {trace} on {memory}", env=env,
                     cwd=workdir if tree else None)


def measure(trace, memory, repeat, workdir, against=None):
    """Median of `repeat` runs. With `against` (another checkout), its runs alternate with ours
    (this machine's speed drifts over minutes, so back-to-back blocks would compare sittings)."""
    runs, base = [], []
    for r in range(repeat):
        order = (None, against) if r % 2 == 0 else (against, None)
        for tree in order:
            if tree is None:
                runs.append(run_once(trace, memory, workdir))
            elif against is not None:
                base.append(run_once(trace, memory, workdir, against))
    if base:
        if {b["cycles"] for b in base} != {r["cycles"] for r in runs}:
            print(f"  note: {against} simulates {base[0]['cycles']:,} cycles, this tree {runs[0]['cycles']:,}")
    cycles = {r["cycles"] for r in runs}
    if len(cycles) != 1:
        raise SystemExit(f"non-deterministic cycle counts for {trace} on {memory}: {sorted(cycles)}")
    walls = [r["wall_seconds"] for r in runs]
    return {
        "memory": memory, "trace": Path(trace).stem, "requests": runs[0]["requests"],
        "cycles": runs[0]["cycles"], "wall_median_s": statistics.median(walls),
        "wall_all_s": walls, "requests_per_s": runs[0]["requests"] / statistics.median(walls),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "bandwidth_gbs": runs[0]["bandwidth"] / 1e9, "peak_bandwidth_gbs": runs[0]["peak_bandwidth"] / 1e9,
        "row_hits": runs[0]["row_hits"], "read_latency_mean": runs[0]["read_latency_mean"],
        **({"against_wall_median_s": statistics.median(b["wall_seconds"] for b in base),
            "against_requests_per_s": base[0]["requests"] / statistics.median(b["wall_seconds"] for b in base),
            "against_peak_rss_mb": max(b["peak_rss_mb"] for b in base)} if base else {}),
    }


API_RUN = r"""
import json, resource, sys, time
import numpy as np
from pimdram import MemorySystem
from pimdram.trace.requests import open_request_trace
trace, memory, mode, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
chunks = list(open_request_trace(trace))
address = np.concatenate([c.address for c in chunks]); is_write = np.concatenate([c.is_write for c in chunks])
arrival = np.concatenate([c.arrival for c in chunks]); n = len(address)
started = time.perf_counter()
ms = MemorySystem(memory)
completed = 0
if mode == "batch":
    # a host handing over `batch` requests at a time with their issue cycles, taking the
    # completions after each
    tags = np.arange(n, dtype=np.int64)
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        ms.send_batch(address[lo:hi], is_write[lo:hi], arrival=arrival[lo:hi], tags=tags[lo:hi])
        ms.run_until(max(ms.cycle, int(arrival[hi - 1])))
        completed += len(ms.completed().tag)
else:
    # one request per call: at its arrival cycle, retried every cycle while refused; completions
    # taken every cycle
    for a, w, t in zip(address.tolist(), is_write.tolist(), arrival.tolist()):
        while ms.cycle < t:
            ms.tick()
            completed += len(ms.completed().tag)
        while not ms.send(a, w):
            ms.tick()
            completed += len(ms.completed().tag)
ms.drain()
completed += len(ms.completed().tag)
wall = time.perf_counter() - started
assert completed == n, (completed, n)
print(json.dumps({"requests": n, "cycles": ms.cycle, "wall_seconds": wall,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CALL_RUN = r"""
import json, time
from pimdram import MemorySystem
ms = MemorySystem("ddr4_3200", {"controller.refresh": "none"})
timed = {"send, accepted": 0.0, "send, refused (queue full)": 0.0, "tick (nothing to do)": 0.0,
         "completed(), none due": 0.0, "completed(), 16 due": 0.0}
counts = dict.fromkeys(timed, 0)
clock = time.perf_counter
for rnd in range(4000):
    t0 = clock()
    ok = 0
    for i in range(32):                 # 32 reads to 16 banks: the read queue takes them all
        ok += ms.send(((rnd * 32 + i) % 16) * 8192 + (rnd * 32 + i) * (1 << 20) % (1 << 30))
    t1 = clock()
    for i in range(8):
        ok -= ms.send(i * 64)           # refused: the read queue is full
    t2 = clock()
    assert ok == 32, ok
    timed["send, accepted"] += t1 - t0
    timed["send, refused (queue full)"] += t2 - t1
    counts["send, accepted"] += 32
    counts["send, refused (queue full)"] += 8
    ms.drain()
    assert len(ms.completed().tag) == 32
    t3 = clock()
    for i in range(8):
        ms.completed()                  # nothing more has completed
    t4 = clock()
    timed["completed(), none due"] += t4 - t3
    counts["completed(), none due"] += 8
ms.run_until(ms.cycle + 10)
t0 = clock()
for _ in range(100000):
    ms.tick()
timed["tick (nothing to do)"] = clock() - t0
counts["tick (nothing to do)"] = 100000
for rnd in range(2000):
    assert sum(ms.send(i * 8192 + rnd * (1 << 20)) for i in range(16)) == 16
    ms.drain()
    t0 = clock()
    n = len(ms.completed().tag)
    timed["completed(), 16 due"] += clock() - t0
    assert n == 16, n
    counts["completed(), 16 due"] += 1
print(json.dumps({k: timed[k] / counts[k] * 1e6 for k in timed}))
"""


def api_once(path, memory, mode, batch):
    return fresh_run(API_RUN, path, memory, mode, batch, what=f"API run {mode} of {path} on {memory}")


def api(args, traces, workdir):
    """MemorySystem against replay on the same traces (fresh processes, medians): requests/s in
    batches of --batch requests and one request per call, and the per-call cost of its methods.
    The three ways' runs alternate (this machine's speed drifts over minutes)."""
    rows = []
    modes = ("replay", "batch", "single")
    for memory in args.memories:
        for name, path in traces.items():
            runs = {m: [] for m in modes}
            for r in range(args.repeat):
                for m in modes[r % 3:] + modes[:r % 3]:
                    runs[m].append(run_once(path, memory, workdir) if m == "replay"
                                   else api_once(path, memory, m, args.batch))
            cycles = {m: {x["cycles"] for x in runs[m]} for m in modes}
            if any(c != cycles["replay"] or len(c) != 1 for c in cycles.values()):
                raise SystemExit(f"{memory} {name}: cycle counts differ: {cycles}")
            row = {"memory": memory, "trace": name, "cycles": runs["replay"][0]["cycles"]}
            for m in modes:
                walls = [x["wall_seconds"] for x in runs[m]]
                row[m] = {"wall_median_s": statistics.median(walls), "walls": walls,
                          "requests_per_s": runs[m][0]["requests"] / statistics.median(walls)}
            rows.append(row)
            print(f"{memory:14s} {name:10s} replay {row['replay']['requests_per_s'] / 1e6:5.2f} M/s  "
                  f"batches of {args.batch} {row['batch']['requests_per_s'] / 1e6:5.2f} M/s "
                  f"({row['batch']['requests_per_s'] / row['replay']['requests_per_s']:.2f} of replay)  "
                  f"one at a time {row['single']['requests_per_s'] / 1e6:5.2f} M/s", flush=True)
    calls = []
    for _ in range(args.repeat):
        calls.append(fresh_run(CALL_RUN, what="per-call run"))
    per_call = {k: statistics.median(c[k] for c in calls) for k in calls[0]}
    print()
    print(f"| memory | trace | replay requests/s | MemorySystem, batches of {args.batch} | share of replay | "
          "MemorySystem, one request per call |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['memory']} | {r['trace']} | {r['replay']['requests_per_s'] / 1e6:.2f} M | "
              f"{r['batch']['requests_per_s'] / 1e6:.2f} M | "
              f"{r['batch']['requests_per_s'] / r['replay']['requests_per_s']:.2f} | "
              f"{r['single']['requests_per_s'] / 1e6:.2f} M |")
    print()
    print("| call (ddr4_3200) | µs per call (median of runs) |")
    print("|---|---:|")
    for k, v in per_call.items():
        print(f"| {k} | {v:.2f} |")
    return {"rows": rows, "per_call_us": per_call}


def speed(args, traces, workdir):
    rows = []
    for memory in args.memories:
        for name, path in traces.items():
            row = measure(path, memory, args.repeat, workdir, args.against)
            rows.append(row)
            vs = (f"  [{args.against}: {row['against_requests_per_s'] / 1e6:.2f} M req/s, "
                  f"{row['against_peak_rss_mb']:.0f} MB]" if args.against else "")
            print(f"{memory:14s} {name:10s} {row['requests_per_s'] / 1e6:6.2f} M req/s  "
                  f"{row['cycles']:>10,d} cycles  {row['peak_rss_mb']:6.0f} MB  "
                  f"(runs: {', '.join(f'{w:.2f}' for w in row['wall_all_s'])} s){vs}", flush=True)
    print()
    vs = f" | {args.against} requests/s (alternating runs)" if args.against else ""
    print(f"| memory | trace | requests/s (median){vs} | wall s (median of runs) | simulated cycles | peak memory |")
    print("|---|---|---:|" + ("---:|" if args.against else "") + "---:|---:|---:|")
    for r in rows:
        other = f" {r['against_requests_per_s'] / 1e6:.2f} M |" if args.against else ""
        print(f"| {r['memory']} | {r['trace']} | {r['requests_per_s'] / 1e6:.2f} M |{other} {r['wall_median_s']:.2f} "
              f"({len(r['wall_all_s'])} runs) | {r['cycles']:,} | {r['peak_rss_mb']:.0f} MB |")
    return rows


PIM_RUN = r"""
import json, sys, time
from pimdram.lower import run_attention
started = time.perf_counter()
r = run_attention(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), reuse=int(sys.argv[5]))
print(json.dumps({"cycles": r["cycles"], "seconds": r["seconds"], "wall": time.perf_counter() - started,
                  "commands": sum(r["commands"].values())}))
"""
PIM_CASES = [  # design, instances (heads x requests), context, head dim, reuse
    ("attacc-bank", 64, 2048, 128, 1),
    ("attacc-bankgroup", 64, 2048, 128, 1),
    ("attacc-buffer", 64, 2048, 128, 1),
]


STEP_RUN = r"""
import json, sys, tempfile, time
from pathlib import Path
from pimdram.mapping import generate_kernel_trace
from pimdram.llm import Workload
from pimdram.system import replay_kernels
with tempfile.TemporaryDirectory() as d:
    started = time.perf_counter()
    trace = generate_kernel_trace("gpt3-175b", "dgx-attacc", Workload.uniform(64, 2048, 1, phase="decode", context=2048))
    trace.write(Path(d) / "step.jsonl")
    generated = time.perf_counter()
    r = replay_kernels(Path(d) / "step.jsonl", Path(d) / "step.h5").summary
    done = time.perf_counter()
print(json.dumps({"gen": generated - started, "replay": done - generated, "seconds": r["simulated_seconds"],
                  "tokens_per_s": r["tokens_per_s"], "kernels": r["kernels"], "simulated": r["kernels_simulated"],
                  "reused": r["kernels_reused"]}))
"""


INTERFERENCE_RUN = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
from pimdram.mapping import generate_kernel_trace
from pimdram.llm import Workload
from pimdram.system import replay_kernels
from pimdram.system.interference import InterferenceOptions
with tempfile.TemporaryDirectory() as d:
    started = time.perf_counter()
    trace = generate_kernel_trace("gpt3-175b", "neupims", Workload.uniform(256, 512, 1, phase="decode", context=768),
                                  allow_overcommit=True)
    trace.write(Path(d) / "step.jsonl")
    generated = time.perf_counter()
    r = replay_kernels(Path(d) / "step.jsonl", Path(d) / "step.h5", system=sys.argv[1],
                       interference=InterferenceOptions(sys.argv[2] == "on")).summary
    done = time.perf_counter()
print(json.dumps({"gen": generated - started, "replay": done - generated, "seconds": r["simulated_seconds"],
                  "interference_ns": r.get("interference_ns", 0.0), "kernels": r["kernels"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
INTERFERENCE_CASES = [("neupims", "off"), ("neupims", "on"), ("neupims-naive", "off"), ("neupims-naive", "on")]


def interference(args):
    """A GPT-3 175B decode step on NeuPIMs (batch 256, prompt 512, context 768, 8 devices, the
    workload overcommitting memory), the neupims trace replayed on the dual-row-buffer memory and
    on the blocked one (neupims-naive), without and with --interference: gen, then replay, in a
    fresh process per run, the cases alternating run by run (target: the step with interference
    under 30 s)."""
    runs = {case: [] for case in INTERFERENCE_CASES}
    for r in range(args.repeat):
        for case in (INTERFERENCE_CASES if r % 2 == 0 else INTERFERENCE_CASES[::-1]):
            runs[case].append(fresh_run(INTERFERENCE_RUN, *case, what=f"decode step {case}"))
            x = runs[case][-1]
            print(f"{case[0]:14s} interference {case[1]:3s}: {x['seconds'] * 1e3:8.2f} ms simulated, "
                  f"{x['interference_ns'] * 1e-6:6.2f} ms lost; wall gen {x['gen']:.2f} s + replay {x['replay']:.2f} s",
                  flush=True)
    out = []
    print()
    print("| memory | interference | simulated step | lost to interference | wall gen s | wall replay s (median) | "
          "runs | peak MB |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for case, xs in runs.items():
        if len({x["seconds"] for x in xs}) != 1:
            raise SystemExit(f"decode step {case}: the runs' simulated times differ (not deterministic)")
        gen = statistics.median(x["gen"] for x in xs)
        rep = statistics.median(x["replay"] for x in xs)
        rss = max(x["peak_rss_mb"] for x in xs)
        walls = ", ".join(f"{x['replay']:.2f}" for x in xs)
        print(f"| {case[0]} | {case[1]} | {xs[0]['seconds'] * 1e3:.2f} ms | {xs[0]['interference_ns'] * 1e-6:.2f} ms | "
              f"{gen:.2f} | {rep:.2f} | {walls} | {rss:.0f} |")
        out.append({"system": case[0], "interference": case[1], "step": xs[0], "gen_wall_median_s": gen,
                    "replay_wall_median_s": rep, "replay_wall_all_s": [x["replay"] for x in xs], "peak_rss_mb": rss})
    return out


GENERATION_RUN = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
from pimdram.mapping import generate_kernel_trace
from pimdram.llm import Workload
from pimdram.system import replay_kernels
with tempfile.TemporaryDirectory() as d:
    started = time.perf_counter()
    trace = generate_kernel_trace("gpt3-175b", "dgx-attacc", Workload.uniform(54, 2048, 2048, phase="generate"),
                                  allow_overcommit=True)
    trace.write(Path(d) / "gen.jsonl")
    generated = time.perf_counter()
    r = replay_kernels(Path(d) / "gen.jsonl", Path(d) / "gen.h5").summary
    done = time.perf_counter()
print(json.dumps({"gen": generated - started, "replay": done - generated, "seconds": r["simulated_seconds"],
                  "tokens_per_s": r["tokens_per_s"], "decode_tokens_per_s": r["decode_tokens_per_s"],
                  "kernels": r["kernels"], "trace_kernels": len(trace.kernels),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generation(args):
    """A whole GPT-3 175B generation (batch 54, 2048 prompt + 2048 output tokens) on dgx-attacc:
    gen, then replay, in one fresh process per run (target: under 60 s and 2 GB)."""
    runs = []
    for _ in range(args.repeat):
        runs.append(fresh_run(GENERATION_RUN, what="generation"))
    r = runs[0]
    gen = statistics.median(x["gen"] for x in runs)
    rep = statistics.median(x["replay"] for x in runs)
    rss = max(x["peak_rss_mb"] for x in runs)
    totals = ", ".join(f"{x['gen'] + x['replay']:.1f}" for x in runs)
    print(f"gpt3-175b generation (54 x 2048 + 2048) on dgx-attacc: {r['trace_kernels']} trace kernels for "
          f"{r['kernels']:,} kernel runs, {r['seconds']:.1f} s simulated, {r['tokens_per_s']:.0f} tokens/s "
          f"({r['decode_tokens_per_s']:.0f} in decode); wall gen {gen:.2f} s + replay {rep:.2f} s "
          f"(median of {len(runs)}: {totals} s), "
          f"peak {rss:.0f} MB")
    return {"generation": r, "gen_wall_median_s": gen, "replay_wall_median_s": rep, "peak_rss_mb": rss}


SERVE_RUN = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
from pimdram.serve.requests import generate_requests, write_requests
from pimdram.serve.run import serve_requests
n, rate, model, system = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
with tempfile.TemporaryDirectory() as d:
    write_requests(Path(d) / "r.csv", generate_requests(n, rate, "poisson", "sharegpt", seed=1))
    started = time.perf_counter()
    r = serve_requests(Path(d) / "r.csv", Path(d) / "s.h5", model=model, system=system).summary
    done = time.perf_counter()
print(json.dumps({"wall": done - started, "steps": r["steps"], "replays": r["step_replays"],
                  "seconds": r["simulated_seconds"], "tokens_per_s": r["throughput_tokens_per_s"],
                  "output_tokens": r["output_tokens"], "error_max": r["composition_error_max"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def serve_speed(args):
    """`pimdram serve` of --serve-requests ShareGPT-like requests (Poisson, --serve-rate per s) of
    GPT-3 175B on dgx-attacc, in a fresh process per run (issue target: 10,000 requests in under
    5 minutes and 2 GB)."""
    runs = [fresh_run(SERVE_RUN, args.serve_requests, args.serve_rate, args.serve_model, args.serve_system,
                      what="serve") for _ in range(args.repeat)]
    r = runs[0]
    wall = statistics.median(x["wall"] for x in runs)
    rss = max(x["peak_rss_mb"] for x in runs)
    walls = ", ".join(f"{x['wall']:.1f}" for x in runs)
    print(f"serve {args.serve_requests} requests ({args.serve_rate:g}/s, sharegpt) of {args.serve_model} on "
          f"{args.serve_system}: {r['steps']} steps, {r['replays']} replays, {r['seconds']:.1f} s simulated, "
          f"{r['tokens_per_s']:.0f} tokens/s, composition error max {r['error_max']:.2e}; wall {wall:.1f} s "
          f"(median of {len(runs)}: {walls}), "
          f"{wall / r['steps'] * 1e3:.1f} ms per step, peak {rss:.0f} MB")
    return {"serve": r, "wall_median_s": wall, "peak_rss_mb": rss, "runs": runs}


def pim_step(args):
    """A whole GPT-3 175B decode step (96 layers, batch 64, context 2048) on dgx-attacc: gen,
    then replay (fresh process each run)."""
    runs = []
    for _ in range(args.repeat):
        runs.append(fresh_run(STEP_RUN, what="decode step"))
    r = runs[0]
    gen = statistics.median(x["gen"] for x in runs)
    rep = statistics.median(x["replay"] for x in runs)
    print(f"gpt3-175b decode step on dgx-attacc: {r['kernels']} kernels ({r['simulated']} simulated, "
          f"{r['reused']} reused), {r['seconds'] * 1e3:.2f} ms simulated, {r['tokens_per_s']:.0f} tokens/s; "
          f"wall gen {gen:.2f} s + replay {rep:.2f} s (median of {len(runs)})")
    return {"step": r, "gen_wall_median_s": gen, "replay_wall_median_s": rep}


def pim(args):
    """One layer of GPT-3-175B-style attention (64 heads of 128, context 2048) on one HBM3-PIM
    stack in AttAcc's three modes: simulated time and the wall time of each run (a fresh process
    each; config, program and simulation, not the interpreter's start-up and imports)."""
    rows = []
    for case in PIM_CASES:
        runs = []
        for _ in range(args.repeat):
            runs.append(fresh_run(PIM_RUN, *case, what=f"PIM run {case}"))
        walls = [r["wall"] for r in runs]
        row = {"design": case[0], "heads": case[1], "context": case[2], "head_dim": case[3], "reuse": case[4],
               "cycles": runs[0]["cycles"], "simulated_us": runs[0]["seconds"] * 1e6,
               "commands": runs[0]["commands"], "wall_median_s": statistics.median(walls), "wall_all_s": walls}
        rows.append(row)
        print(f"{case[0]:18s} {row['cycles']:>9,d} cycles = {row['simulated_us']:7.1f} us simulated, "
              f"{row['commands']:>9,d} commands, wall {row['wall_median_s']:.2f} s "
              f"(runs: {', '.join(f'{w:.2f}' for w in walls)})", flush=True)
    print()
    step = pim_step(args)
    print()
    print("| design | simulated cycles | simulated time | commands | wall s (median) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['design']} | {r['cycles']:,} | {r['simulated_us']:.1f} µs | {r['commands']:,} | "
              f"{r['wall_median_s']:.2f} ({len(r['wall_all_s'])} runs) |")
    return {"layers": rows, "decode_step": step}


VALIDATE_RUN = r"""
import json, resource, sys, time
from pimdram.validate import run_claims
started = time.perf_counter()
rows = run_claims(["all"], quick=sys.argv[1] == "quick")
print(json.dumps({"wall": time.perf_counter() - started, "rows": rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def validate(args):
    """`pimdram validate all` in its full form (and the --quick form the test suite runs), each in
    a fresh process per run: wall time and peak memory, and the claim table (docs/validate.md)."""
    from pimdram.validate import format_table
    out = {}
    for form in ("full", "quick"):
        runs = []
        for _ in range(args.repeat):
            runs.append(fresh_run(VALIDATE_RUN, form, what=f"validate ({form})"))
        if any(r["rows"] != runs[0]["rows"] for r in runs):
            raise SystemExit(f"validate ({form}): the runs' figures differ (not deterministic)")
        walls = [r["wall"] for r in runs]
        print(f"pimdram validate all{' --quick' if form == 'quick' else ''}: {len(runs[0]['rows'])} claims, "
              f"wall {statistics.median(walls):.1f} s (median of {len(runs)}: "
              f"{', '.join(f'{w:.1f}' for w in walls)} s), peak {max(r['peak_rss_mb'] for r in runs):.0f} MB "
              f"(target: full under 600 s)")
        print(format_table(runs[0]["rows"], detail=form == "full"))
        print(flush=True)
        out[form] = {"wall_median_s": statistics.median(walls), "wall_all_s": walls,
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "rows": runs[0]["rows"]}
    return out


SWEEP_POINTS = {   # 2 models x 2 systems x 50 batch sizes = 200 decode steps of the whole model
    "model": ["llama3-8b", "gpt3-6.7b"],
    "system": ["dgx-a100", "dgx-attacc"],
    "batch": list(range(1, 51)),
    "prompt_tokens": 512,
    "output_tokens": 128,
    "phase": "decode",
    "context": 1024,
}
SWEEP_RUN = r"""
import json, resource, sys
from pimdram.sweep import load_sweep, local_pool, run_sweep
sweep = load_sweep(sys.argv[1])
with local_pool(int(sys.argv[3])) as pool:
    r = run_sweep(sweep, sys.argv[2], executor=pool, cache=None, overwrite=True)
cpu = lambda who: (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(who))
print(json.dumps({"seconds": r.seconds, "points": r.points, "ok": r.ok,
                  "driver_cpu": cpu(resource.RUSAGE_SELF), "worker_cpu": cpu(resource.RUSAGE_CHILDREN)}))
"""


def sweep_speed(args):
    """A 200-point sweep (whole-model decode steps) on a local pool of 1 and of 2 workers, without
    the cache: points per second, end to end (resolving the points, starting the pool, running,
    writing the table). The two pool sizes alternate run by run (the machine's speed drifts).

    Also the CPU time of the driver process and of the workers, and the cores the run got
    ((driver + workers) / wall): on a machine other jobs load, a run of 2 workers gets less than
    2 cores, and the CPU time per point shows whether the pool itself costs anything."""
    import yaml
    runs = {1: [], 2: []}
    detail = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as workdir:
        sweep = Path(workdir) / "bench-sweep.yaml"
        sweep.write_text(yaml.safe_dump(SWEEP_POINTS, sort_keys=False))
        for r in range(args.repeat):
            for jobs in ((1, 2) if r % 2 == 0 else (2, 1)):
                out = fresh_run(SWEEP_RUN, sweep, Path(workdir) / "r.csv", jobs, what=f"sweep on {jobs} workers")
                if out["ok"] != out["points"]:
                    raise SystemExit(f"sweep on {jobs} workers: only {out['ok']} of {out['points']} points ran")
                runs[jobs].append(out["points"] / out["seconds"])
                cores = (out["driver_cpu"] + out["worker_cpu"]) / out["seconds"]
                detail[jobs].append(dict(out, cores=cores))
                print(f"{jobs} worker{'s' if jobs > 1 else ''}: {out['points']} points in {out['seconds']:.1f} s = "
                      f"{runs[jobs][-1]:.2f} points/s; CPU: workers {out['worker_cpu']:.1f} s, driver "
                      f"{out['driver_cpu']:.1f} s; {cores:.2f} cores", flush=True)
    one, two = statistics.median(runs[1]), statistics.median(runs[2])
    print()
    print("| workers | points/s (median) | runs | speed-up | workers' CPU s per point | driver CPU s | cores used |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for jobs, median in ((1, one), (2, two)):
        d = detail[jobs]
        print(f"| {jobs} | {median:.2f} | {', '.join(f'{v:.2f}' for v in runs[jobs])} | {median / one:.2f}x | "
              f"{statistics.median(x['worker_cpu'] / x['points'] for x in d):.3f} | "
              f"{statistics.median(x['driver_cpu'] for x in d):.2f} | "
              f"{statistics.median(x['cores'] for x in d):.2f} |")
    return {"points": len(SWEEP_POINTS["model"]) * len(SWEEP_POINTS["system"]) * len(SWEEP_POINTS["batch"]),
            "points_per_s": {str(k): v for k, v in runs.items()}, "runs": detail, "speedup": two / one}


def dramsim3_configs(binary):
    """DRAMsim3's configs/ directory for a dramsim3main built with CMake (its source tree's)."""
    cache = Path(binary).resolve().parent / "CMakeCache.txt"
    if cache.exists():
        for line in cache.read_text().splitlines():
            if line.startswith("CMAKE_HOME_DIRECTORY:"):
                return Path(line.split("=", 1)[1]) / "configs"
    return Path(binary).resolve().parent.parent / "configs"


def run_dramsim3(binary, config, cycles, trace, workdir):
    """One DRAMsim3 run of `trace` for `cycles` cycles: (wall s, CPU s) of the whole process."""
    out = Path(workdir) / "dramsim3-out"
    out.mkdir(exist_ok=True)
    before = os.times()
    started = time.perf_counter()
    proc = subprocess.run([str(binary), str(config), "-c", str(cycles), "-t", str(trace), "-o", str(out)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"DRAMsim3 on {trace} failed:\n{proc.stderr}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def dramsim3_side_by_side(args, traces, workdir):
    """The six shared runs (tools/dramsim3_results.csv) on DRAMsim3 and on pimdram's compare
    presets, their runs alternating (this machine's speed drifts): wall and CPU time of each,
    medians over --repeat runs. DRAMsim3 runs the reference cycle count of each trace (the cycle
    its last read returned), pimdram the whole replay (parse, simulate, write the stats file;
    its `wall_seconds`, without the interpreter's start-up; CPU time over the same span, both
    threads)."""
    if args.requests != 1_000_000:
        raise SystemExit("--dramsim3 runs the reference traces of 1,000,000 requests (no --requests)")
    with open(REFERENCE_CSV) as f:
        reference = list(csv.DictReader(f))
    configs = args.dramsim3_configs or dramsim3_configs(args.dramsim3)
    rows = []
    for ref in reference:
        memory = COMPARE[ref["preset"]]
        config = configs / f"{ref['preset']}.ini"
        ours, theirs, base = [], [], []
        sides = ["ours", "dramsim3"] + (["against"] if args.against else [])
        for r in range(args.repeat):
            for side in sides[r % len(sides):] + sides[:r % len(sides)]:
                if side == "dramsim3":
                    theirs.append(run_dramsim3(args.dramsim3, config, ref["cycles"], traces[ref["trace"]], workdir))
                    continue
                res = run_once(traces[ref["trace"]], memory, workdir, args.against if side == "against" else None)
                res["cpu"] = res.get("cpu_seconds", float("nan"))
                (ours if side == "ours" else base).append(res)
        wall = statistics.median(o["wall_seconds"] for o in ours)
        cpu = statistics.median(o["cpu"] for o in ours)
        ds_wall = statistics.median(w for w, _ in theirs)
        ds_cpu = statistics.median(c for _, c in theirs)
        row = {"preset": ref["preset"], "trace": ref["trace"], "memory": memory, "cycles": ours[0]["cycles"],
               "dramsim3_cycles": int(ref["cycles"]), "requests": ours[0]["requests"],
               "wall_median_s": wall, "wall_all_s": [o["wall_seconds"] for o in ours],
               "cpu_median_s": cpu, "peak_rss_mb": max(o["peak_rss_mb"] for o in ours),
               "dramsim3_wall_median_s": ds_wall, "dramsim3_wall_all_s": [w for w, _ in theirs],
               "dramsim3_cpu_median_s": ds_cpu, "speedup_wall": ds_wall / wall, "speedup_cpu": ds_cpu / cpu}
        if base:
            b_wall = statistics.median(o["wall_seconds"] for o in base)
            b_cpu = statistics.median(o["cpu"] for o in base)
            row.update(against_wall_median_s=b_wall, against_wall_all_s=[o["wall_seconds"] for o in base],
                       against_cpu_median_s=b_cpu, against_speedup_wall=ds_wall / b_wall,
                       against_speedup_cpu=ds_cpu / b_cpu)
            print(f"  [{args.against}: {b_wall:.2f} s (cpu {b_cpu:.2f}), {ds_wall / b_wall:.1f}x wall, "
                  f"{ds_cpu / b_cpu:.1f}x cpu]")
        rows.append(row)
        print(f"{ref['preset']:18s} {ref['trace']:10s} pimdram {wall:6.2f} s (cpu {cpu:.2f})  DRAMsim3 {ds_wall:6.2f} s "
              f"(cpu {ds_cpu:.2f})  {row['speedup_wall']:5.1f}x wall, {row['speedup_cpu']:5.1f}x cpu  "
              f"(ours: {', '.join(f'{w:.2f}' for w in row['wall_all_s'])}; "
              f"DRAMsim3: {', '.join(f'{w:.1f}' for w in row['dramsim3_wall_all_s'])})", flush=True)
    print()
    print("| DRAMsim3 preset | trace | pimdram wall s | DRAMsim3 wall s | speed-up (wall) | pimdram CPU s | "
          "DRAMsim3 CPU s | speed-up (CPU) | pimdram requests/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['preset']} | {r['trace']} | {r['wall_median_s']:.2f} | {r['dramsim3_wall_median_s']:.2f} | "
              f"{r['speedup_wall']:.1f}x | {r['cpu_median_s']:.2f} | {r['dramsim3_cpu_median_s']:.2f} | "
              f"{r['speedup_cpu']:.1f}x | {r['requests'] / r['wall_median_s'] / 1e6:.2f} M |"
              + (f" {args.against}: {r['against_speedup_wall']:.1f}x wall, {r['against_speedup_cpu']:.1f}x CPU |"
                 if args.against else ""))
    return rows


def compare(args, traces, workdir):
    with open(REFERENCE_CSV) as f:
        reference = list(csv.DictReader(f))
    rows = []
    for ref in reference:
        memory = COMPARE[ref["preset"]]
        r = measure(traces[ref["trace"]], memory, 1, workdir)
        theirs = int(ref["cycles"])
        gap = (r["cycles"] - theirs) / theirs * 100
        rows.append((ref["preset"], ref["trace"], theirs, r["cycles"], gap, ref, r))
        print(f"{ref['preset']:18s} {ref['trace']:10s} DRAMsim3 {theirs:>10,d}  pimdram {r['cycles']:>10,d}  "
              f"{gap:+6.2f}%", flush=True)
    print()
    print("| DRAMsim3 preset | trace | DRAMsim3 cycles | pimdram cycles | gap | DRAMsim3 / pimdram avg read latency |")
    print("|---|---|---:|---:|---:|---:|")
    for preset, trace, theirs, ours, gap, ref, r in rows:
        print(f"| {preset} | {trace} | {theirs:,} | {ours:,} | {gap:+.2f}% | "
              f"{ref['avg_read_latency_cycles']} / {r['read_latency_mean']:.0f} |")
    print()
    with open(RAMULATOR2_CSV) as f:
        reference = list(csv.DictReader(f))
    r2rows = []
    for ref in reference:
        r = measure(traces[ref["trace"]], ref["preset"], 1, workdir)
        theirs = int(ref["cycles"])
        gap = (r["cycles"] - theirs) / theirs * 100
        r2rows.append((ref, r, gap))
        print(f"{ref['preset']:24s} {ref['trace']:10s} Ramulator 2.1 {theirs:>10,d}  pimdram {r['cycles']:>10,d}  "
              f"{gap:+6.2f}%  ({float(ref['wall_seconds']):.1f} s / {r['wall_median_s']:.2f} s)", flush=True)
    print()
    print("| preset | trace | Ramulator 2.1 cycles | pimdram cycles | gap | avg read latency Ramulator / pimdram | "
          "row hits Ramulator / pimdram | wall s Ramulator / pimdram |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for ref, r, gap in r2rows:
        print(f"| {ref['preset']} | {ref['trace']} | {int(ref['cycles']):,} | {r['cycles']:,} | {gap:+.2f}% | "
              f"{float(ref['avg_read_latency_cycles']):.1f} / {r['read_latency_mean']:.1f} | "
              f"{int(ref['row_hits']):,} / {r['row_hits']:,} | {float(ref['wall_seconds']):.1f} / "
              f"{r['wall_median_s']:.2f} |")
    return {"dramsim3": rows, "ramulator2": r2rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--traces", type=Path, default=Path(tempfile.gettempdir()) / "pimdram-bench-traces")
    ap.add_argument("--memories", nargs="+", default=list(MEMORIES))
    ap.add_argument("--compare", action="store_true", help="compare cycle counts with DRAMsim3's and Ramulator 2.1's")
    ap.add_argument("--pim", action="store_true", help="one layer of attention on one AttAcc stack, three modes")
    ap.add_argument("--generation", action="store_true",
                    help="a whole GPT-3 175B generation (54 x 2048 + 2048 tokens) on dgx-attacc: gen + replay")
    ap.add_argument("--validate", action="store_true",
                    help="`pimdram validate all`, full and --quick forms: wall time, peak memory, the claim table")
    ap.add_argument("--sweep", action="store_true", help="a 200-point sweep on 1 and on 2 worker processes")
    ap.add_argument("--interference", action="store_true",
                    help="a GPT-3 175B decode step (batch 256) on NeuPIMs with and without --interference")
    ap.add_argument("--api", action="store_true", help="pimdram.MemorySystem against replay, and its per-call cost")
    ap.add_argument("--batch", type=int, default=4096, help="--api: requests per send_batch")
    ap.add_argument("--against", type=Path, metavar="CHECKOUT",
                    help="also time another checkout (built in place), its runs alternating with ours")
    ap.add_argument("--dramsim3", type=Path, metavar="DRAMSIM3MAIN",
                    help="time DRAMsim3 (this dramsim3main binary) on the six shared runs, alternating with ours")
    ap.add_argument("--dramsim3-configs", type=Path, metavar="DIR",
                    help="DRAMsim3's configs/ directory (default: from the binary's CMake cache)")
    ap.add_argument("--serve", action="store_true", help="pimdram serve of a ShareGPT-like stream (issue 13's target)")
    ap.add_argument("--serve-requests", type=int, default=10_000)
    ap.add_argument("--serve-rate", type=float, default=10.0, help="--serve: Poisson arrivals per second")
    ap.add_argument("--serve-model", default="gpt3-175b")
    ap.add_argument("--serve-system", default="dgx-attacc")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args()

    if args.serve:
        rows = serve_speed(args)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1, default=str))
        return

    if args.validate or args.sweep:
        rows = validate(args) if args.validate else sweep_speed(args)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1, default=str))
        return
    if args.generation or args.pim or args.interference:
        rows = generation(args) if args.generation else pim(args) if args.pim else interference(args)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1, default=str))
        return
    from pimdram.trace.synthetic import synthetic_traces
    traces = synthetic_traces(args.traces / str(args.requests), args.requests)
    with tempfile.TemporaryDirectory() as workdir:
        if args.dramsim3:
            rows = dramsim3_side_by_side(args, traces, workdir)
        else:
            rows = (compare(args, traces, workdir) if args.compare else api(args, traces, workdir) if args.api
                    else speed(args, traces, workdir))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
