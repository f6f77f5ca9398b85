#!/usr/bin/env python3
"""pimdram against the AttAcc authors' simulator on the AttAcc paper's setups (docs/validation.md).

    python tools/attacc_validation.py                 # markdown table of every reference point
    python tools/attacc_validation.py --schedule sequential

Each row: GPT-3 175B decode, FP16, one step at the generation's mean context (2048 prompt + 2048
output tokens: 3071 cached tokens), on a system preset at a batch size, against the tokens/s our
own run of scale-snu/attacc_simulator (commit c600051) printed for the same setup
(tools/attacc_simulator_results.csv, whose last column has its arguments). Workloads that
do not fit the system's memory run as capacity studies (--allow-overcommit), as the reference
does not check capacity.
"""
import argparse
import csv
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "attacc_simulator_results.csv"


def reference_points(schedule=None):
    """The reference rows (dicts with system, batch, context, schedule, tokens_per_s)."""
    with open(REFERENCE, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["batch"], r["context"], r["tokens_per_s"] = int(r["batch"]), int(r["context"]), float(r["tokens_per_s"])
    return [r for r in rows if schedule is None or r["schedule"] == schedule]


#: the reference's schedules as pimdram's attacc policy options (--set overrides of the system)
SCHEDULES = {
    "sequential": {"mapping.head_groups": 1, "mapping.ffn_coprocessing": False},
    "pipelined+ff": {"mapping.head_groups": "auto", "mapping.ffn_coprocessing": True},
}


def system_for(name, schedule):
    """The system preset `name` running the reference's `schedule` (a GPU-only system has none)."""
    from pimdram.config.system import load_system
    system = load_system(name)
    return load_system(name, SCHEDULES[schedule]) if system.policy == "attacc" else system


def pimdram_tokens_per_s(system, batch, context, workdir, schedule="sequential"):
    """tokens/s of one GPT-3 175B decode step at `context` cached tokens (prompt 2048, output 2048)."""
    from pimdram.llm import Workload
    from pimdram.mapping import generate_kernel_trace
    from pimdram.system import replay_kernels
    trace = generate_kernel_trace("gpt3-175b", system_for(system, schedule),
                                  Workload.uniform(batch, 2048, 2048, phase="decode", context=context),
                                  allow_overcommit=True)
    path = Path(workdir) / f"{system}-{batch}-{schedule}.jsonl"
    trace.write(path)
    return replay_kernels(path, path.with_suffix(".h5"), overwrite=True).summary["tokens_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schedule", choices=("sequential", "pipelined+ff"), help="only reference rows of this schedule")
    args = ap.parse_args()
    print("| system | batch | AttAcc sim schedule | AttAcc sim tokens/s | pimdram tokens/s | pimdram / AttAcc sim |")
    print("|---|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as work:
        for r in reference_points(args.schedule):
            ours = pimdram_tokens_per_s(r["system"], r["batch"], r["context"], work, r["schedule"])
            print(f"| {r['system']} | {r['batch']} | {r['schedule']} | {r['tokens_per_s']:.1f} | {ours:.1f} | "
                  f"{ours / r['tokens_per_s']:.3f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
