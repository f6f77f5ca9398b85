#!/usr/bin/env python3
"""Digests of the engine's command logs on every memory preset, seven controller policies and the
three synthetic traces: what an engine change that claims to keep the simulation the same must
leave byte-identical.

    python tools/golden_logs.py                  # print the digests as JSON
    python tools/golden_logs.py --write          # rewrite tests/data/engine_golden_logs.json

Each run feeds the trace in chunks of 4,096 requests (so chunk boundaries are crossed) and
hashes the whole command log, the completion cycle and the main counters; the run ids are
preset/policy index/trace. tests/test_engine_golden_logs.py compares against the stored file.
Rewrite it only for a change that is meant to change what the engine issues, and say why in the
commit.
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "tests" / "data" / "engine_golden_logs.json"
REQUESTS = 10000
CHUNK = 4096
POLICIES = [
    {},
    {"controller.row_policy": "closed"},
    {"controller.scheduler": "fcfs"},
    {"controller.bank_queue": 4},
    {"controller.refresh": "per_bank"},
    {"controller.scheduler": "first_ready"},
    {"controller.row_hit_cap": 4},
]
LOG_COLUMNS = ("cycle", "command", "channel", "node", "row", "column")
COUNTERS = ("commands", "reads", "writes", "row_hits", "row_misses", "row_conflicts", "latency_sum",
            "latency_max", "active_cycles")


def trace_arrays(name, n=REQUESTS):
    """The synthetic trace `name` (pimdram.trace.synthetic) as address, is_write, arrival arrays."""
    from pimdram.trace.synthetic import _GENERATORS
    rows = list(_GENERATORS[name](n))
    address = np.fromiter((a for a, _ in rows), dtype=np.uint64, count=n)
    is_write = np.fromiter((w for _, w in rows), dtype=np.uint8, count=n)
    return address, is_write, np.arange(n, dtype=np.int64)


def run_digest(spec, address, is_write, arrival):
    """(completion cycle, sha256 prefix of the command log and counters) of one replay."""
    from pimdram._engine import Engine
    from pimdram.replay import engine_params
    engine = Engine(engine_params(spec, command_log=True))
    parts = {c: [] for c in LOG_COLUMNS}

    def take():
        for c, v in engine.take_log().items():
            parts[c].append(v)

    for i in range(0, len(address), CHUNK):
        sl = slice(i, i + CHUNK)
        engine.feed_decoded(engine.decode(address[sl], is_write[sl], arrival[sl], None, spec.request_bytes))
        engine.run(False)
        take()
    engine.run(True)
    take()
    h = hashlib.sha256()
    for c in LOG_COLUMNS:
        h.update(c.encode())
        h.update(np.ascontiguousarray(np.concatenate(parts[c])).tobytes())
    counters = engine.counters()
    for c in COUNTERS:
        h.update(c.encode())
        h.update(np.ascontiguousarray(counters[c]).tobytes())
    return [int(engine.completion_cycle), h.hexdigest()[:20]]


def golden_digests(runs=None):
    """{run id: [completion cycle, digest]} for every (preset, policy, trace) a preset accepts."""
    from pimdram.config import list_configs
    from pimdram.config.memory import load_memory
    from pimdram.trace.synthetic import TRACES
    traces = {t: trace_arrays(t) for t in TRACES}
    out = {}
    for preset in list_configs("dram") + list_configs("compare"):
        for i, policy in enumerate(POLICIES):
            try:
                spec = load_memory(preset, policy)
            except Exception:       # a policy the preset cannot express (e.g. no per-bank refresh)
                continue
            for t in TRACES:
                key = f"{preset}/{i}/{t}"
                if runs is None or key in runs:
                    out[key] = run_digest(spec, *traces[t])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"rewrite {GOLDEN.relative_to(HERE.parent)}")
    args = ap.parse_args()
    digests = golden_digests()
    text = json.dumps(digests, indent=0, sort_keys=True) + "\n"
    if args.write:
        GOLDEN.write_text(text)
        print(f"{len(digests)} runs written to {GOLDEN}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
