"""`pimdram replay`: run a request trace on a memory system, or a kernel trace on a system, and
write the statistics file."""
from pathlib import Path

import click

from ._options import (FiniteFloatRange, ProgressBar, check_output, output_option, overwrite_option,
                       progress_option, seed_option, want_progress)

FORMATS = ("auto", "ramulator", "dramsim3", "binary")


@click.command("replay")
@click.argument("trace", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--memory", "-m", metavar="NAME|FILE.yaml|FILE.ini",
              help="Memory standard or PIM design for a request trace: a preset name (pimdram config list), "
                   "a YAML file, or a DRAMsim3 .ini / Ramulator 2 YAML (imported as `pimdram config import` does).")
@click.option("--system", metavar="NAME|FILE.yaml",
              help="Kernel traces: the system to run on (default: the one named in the trace header).")
@click.option("--symmetry/--no-symmetry", default=True, show_default=True,
              help="Kernel traces: simulate one channel per distinct PIM channel load and reuse kernels "
                   "with equal inputs (--no-symmetry simulates every channel of every PIM kernel).")
@click.option("--format", "trace_format", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Trace format; auto detects it from the file.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config value by dotted path, e.g. controller.read_queue=64 or timing.nCL=20 "
                   "(repeatable).")
@click.option("--interference/--no-interference", default=True, show_default=True,
              help="Kernel traces: simulate xPU kernels' memory traffic beside the PIM kernels they overlap in a "
                   "shared memory, at command level (docs/replay.md, Interference); --no-interference: devices "
                   "that share a memory take turns by rule instead.")
@click.option("--interference-full/--interference-sampled", "interference_full", default=True, show_default=True,
              help="Simulate every overlap of an xPU and a PIM kernel whole, or in sampled windows (faster; "
                   "under-counts long overlaps: docs/replay.md, Interference).")
@click.option("--interference-window", "window_ns", type=FiniteFloatRange(min=1.0), default=2000.0,
              show_default=True, metavar="NS", help="--interference-sampled: length of one window.")
@click.option("--interference-windows", "windows", type=click.IntRange(min=1), default=3, show_default=True,
              help="--interference-sampled: windows per overlap.")
@click.option("--command-log", is_flag=True, default=False,
              help="Keep every issued command in the stats file (for `pimdram check`).")
@progress_option
@seed_option
@output_option(help="Statistics file to write (HDF5).")
@overwrite_option
def command(trace, memory, system, symmetry, trace_format, sets, interference, window_ns, windows,
            interference_full, command_log, progress, seed, output, overwrite):
    """Replay a request TRACE (Ramulator 2, DRAMsim3 or pimdram binary) on a memory system, or a
    kernel trace (pimdram gen) on a system with PIM. TRACE `-` reads standard input; a pipe,
    FIFO or device is read once.

    \b
    Examples:
      pimdram replay traces/example_hbm2.dramsim3 --memory hbm2_2gbps -o out.h5
      pimdram replay big.trace --memory ddr4_3200 --set controller.row_policy=closed -o closed.h5
      pimdram replay t.dramsim3 -m dramsim3_hbm2_8gb_x128 --command-log -o t.h5 && pimdram check t.h5
      pimdram replay attention.jsonl -o attention.h5             # kernel trace, system from its header
      pimdram replay step.jsonl --system dgx-attacc --set options.power_limit=unlimited -o step.h5
    """
    from ..config.files import names_a_file
    from ..config.memory import parse_set_options
    from ..system.interference import InterferenceOptions
    from ..replay import replay_requests
    from ..system import replay_kernels
    from ..trace.source import TraceSource

    check_output(output, overwrite, [trace] + [f for f in (memory, system) if f and names_a_file(f)])
    source = TraceSource(trace)
    kind = trace_kind(source, trace_format)
    if kind == "kernel":
        if memory is not None:
            raise click.UsageError("--memory is for request traces; a kernel trace runs on --system (or its header's)")
        s = _with_bar("replaying kernels", progress, replay_kernels, source, output, system=system,
                      overrides=parse_set_options(sets), symmetry=symmetry, command_log=command_log,
                      overwrite=overwrite,
                      interference=InterferenceOptions(interference, window_ns, windows, interference_full))
        click.echo(f"{output}: {s['kernels']} kernels in {s['simulated_seconds'] * 1e6:.1f} us "
                   f"({s['tokens_per_s']:.1f} tokens/s; {s['kernels_simulated']} simulated, "
                   f"{s['kernels_reused']} reused, {s['kernels_modelled']} modelled), "
                   f"{s['wall_seconds']:.2f} s wall", err=True)
        return
    if system is not None:
        raise click.UsageError("--system is for kernel traces; a request trace runs on --memory")
    if memory is None:
        raise click.UsageError("a request trace needs --memory")
    s = _with_bar("replaying", progress, replay_requests, source, memory, output, trace_format=trace_format,
                  overrides=parse_set_options(sets), command_log=command_log, overwrite=overwrite, seed=seed)
    click.echo(f"{output}: {s['requests']} requests in {s['cycles']} cycles "
               f"({s['bandwidth'] / 1e9:.2f} GB/s of {s['peak_bandwidth'] / 1e9:.2f} GB/s peak), "
               f"{s['wall_seconds']:.2f} s wall", err=True)


def trace_kind(source, trace_format="auto"):
    """"kernel" or "request" for a trace, by its first bytes; an empty file, or one that is
    neither (a JSON line that is not a kernel-trace header, text no request format reads), is
    an error that says what the file is not, rather than asking for --memory."""
    from ..errors import TraceError
    from ..trace.requests import BINARY_MAGIC, detect_format

    head = source.peek(4096)
    if not head.strip():
        raise TraceError(f"{source}: the file is empty, expected a request trace (with --memory) or a kernel "
                         "trace (pimdram gen)")
    first = head.lstrip()
    if first.startswith((b"{", b"[")) or str(source).endswith((".jsonl", ".json")):
        if not first.startswith(BINARY_MAGIC):
            return "kernel"             # the kernel-trace reader says what is wrong with it
    if trace_format == "auto":
        detect_format(source)           # a request trace: its format must be recognisable
    return "request"


def _with_bar(label, progress, run, *args, **kw):
    """run(*args, progress=bar, **kw) with a progress bar on stderr; the result's summary."""
    bar = ProgressBar(label, want_progress(progress))
    try:
        return run(*args, progress=bar, **kw).summary
    finally:
        bar.close()
