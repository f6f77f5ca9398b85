"""The pimdram.stats HDF5 schema: format name and version, paths, root attributes, standard tables.

This module is the one place that spells the layout of a stats file. The writer and reader
(`writer.py`, `reader.py`) are generic over tables; the standard tables a replay writes, with
the dtype and unit of every column, are declared here as data so that the replay never repeats a
unit or a dtype and the spec (docs/stats-format.md) can be checked against the code.
"""
import numpy as np

FORMAT = "pimdram.stats"
FORMAT_VERSION = (1, 6)

#: Group under which every table lives: table `channels` is the group `/tables/channels`.
TABLES_GROUP = "tables"

# Root attribute names (hyphenated, as in cooler/H5MD).
ATTR_FORMAT = "format"
ATTR_FORMAT_VERSION = "format-version"
ATTR_GENERATED_BY = "generated-by"
ATTR_CREATION_DATE = "creation-date"
ATTR_CONFIG = "config"
ATTR_TRACE_SHA256 = "trace-sha256"
ATTR_TRACE_PATH = "trace-path"
ATTR_SEED = "seed"
ATTR_COMMAND_NAMES = "command-names"
ATTR_LEVELS = "levels"

#: Written by the writer itself; a caller may not set them.
WRITER_ATTRS = (ATTR_FORMAT, ATTR_FORMAT_VERSION, ATTR_GENERATED_BY, ATTR_CREATION_DATE)

#: Every 1.x file has these root attributes, supplied by the caller of the writer.
REQUIRED_ATTRS = (ATTR_CONFIG, ATTR_TRACE_SHA256, ATTR_TRACE_PATH, ATTR_SEED,
                  ATTR_COMMAND_NAMES, ATTR_LEVELS)

#: Optional root attributes and the value a reader gives them when a file lacks them. An
#: attribute added in a later minor version goes here (with its "since" in the spec) so that
#: files written before it existed still read.
ATTR_DEFAULTS = {
    "description": "",
    "warnings": "[]",      # since 1.2: JSON list of warnings of the run (e.g. an overcommitted memory)
}

# Table attributes (on the group /tables/<name>).
TABLE_ATTR_COLUMNS = "columns"   # column names in order (HDF5 lists members alphabetically)
COLUMN_ATTR_UNIT = "unit"

#: A column longer than this is stored chunked with gzip+shuffle; shorter ones contiguous.
COMPRESS_MIN_ROWS = 1024
#: Rows per chunk of a compressed column (at most; short columns get one chunk).
CHUNK_ROWS = 1 << 16
GZIP_LEVEL = 4

#: Column kinds a table may hold, by numpy dtype kind: bool, signed, unsigned, float, str.
COLUMN_KINDS = "biufU"

# --- standard tables (what a replay writes) -----------------------------------------------

SUMMARY = "summary"
CHANNELS = "channels"
LATENCY_HISTOGRAM = "latency_histogram"
BANDWIDTH = "bandwidth"
ENERGY = "energy"
COMMAND_LOG = "command_log"
KERNELS = "kernels"
RUN = "run"            # since 1.1: kernel replays
LAYERS = "layers"      # since 1.1
STEPS = "steps"        # since 1.1
DEVICE_ENERGY = "device_energy"   # since 1.2: kernel replays, energy by device and kind
# served streams (pimdram serve), since 1.6
SERVE_SUMMARY = "serve_summary"
REQUESTS = "requests"
SERVE_STEPS = "serve_steps"
SERVE_CHECKS = "serve_checks"
KV_MEMORIES = "kv_memories"

#: latency_histogram.kind values, in order (also stored as that table's `kind-names` attribute).
LATENCY_KINDS = ("read", "write")

_I64, _I32, _U8, _F64 = np.dtype("int64"), np.dtype("int32"), np.dtype("uint8"), np.dtype("float64")
_STR, _BOOL = np.dtype(str), np.dtype(bool)      # text of any length (stored as UTF-8)

_LATENCY_STATS = ("mean", "p50", "p90", "p99", "max")

_STANDARD = {
    SUMMARY: [
        ("cycles", _I64, "cycle"),
        ("tck_ns", _F64, "ns"),
        ("simulated_seconds", _F64, "s"),
        ("requests", _I64, "count"),
        ("reads", _I64, "count"),
        ("writes", _I64, "count"),
        ("bytes_read", _I64, "B"),
        ("bytes_written", _I64, "B"),
        ("row_hits", _I64, "count"),
        ("row_misses", _I64, "count"),
        ("row_conflicts", _I64, "count"),
        ("read_latency_mean", _F64, "cycle"),
        ("write_latency_mean", _F64, "cycle"),
        ("bandwidth", _F64, "B/s"),
        ("peak_bandwidth", _F64, "B/s"),
        ("energy_j", _F64, "J"),
        ("wall_seconds", _F64, "s"),
        ("requests_per_second", _F64, "1/s"),
    ],
    # cmd_<NAME> columns are inserted after `channel`, one per command (see standard_columns)
    CHANNELS: [
        ("channel", _I32, "1"),
        ("reads", _I64, "count"),
        ("writes", _I64, "count"),
        ("bytes_read", _I64, "B"),
        ("bytes_written", _I64, "B"),
        ("row_hits", _I64, "count"),
        ("row_misses", _I64, "count"),
        ("row_conflicts", _I64, "count"),
        ("busy_cycles", _I64, "cycle"),
    ] + [(f"read_latency_{s}", _F64, "cycle") for s in _LATENCY_STATS]
      + [(f"write_latency_{s}", _F64, "cycle") for s in _LATENCY_STATS]
      + [("energy_j", _F64, "J")],
    LATENCY_HISTOGRAM: [
        ("channel", _I32, "1"),
        ("kind", _U8, "1"),
        ("bin_start", _I64, "cycle"),
        ("bin_end", _I64, "cycle"),
        ("count", _I64, "count"),
    ],
    BANDWIDTH: [
        ("step", _I64, "cycle"),
        ("bytes_read", _I64, "B"),
        ("bytes_written", _I64, "B"),
    ],
    ENERGY: [
        ("channel", _I32, "1"),
        ("activate_j", _F64, "J"),
        ("read_j", _F64, "J"),
        ("write_j", _F64, "J"),
        ("refresh_j", _F64, "J"),
        ("background_j", _F64, "J"),
        ("total_j", _F64, "J"),
    ],
    # kernel replays (since 1.1)
    KERNELS: [
        ("id", _I64, "1"),
        ("name", _STR, "1"),
        ("layer", _I32, "1"),
        ("step", _I32, "1"),
        ("device", _STR, "1"),
        ("instances", _I64, "count"),            # since 1.2: steps that ran it (its template's)
        ("start_cycle", _I64, "cycle"),
        ("end_cycle", _I64, "cycle"),
        ("start_ns", _F64, "ns"),
        ("end_ns", _F64, "ns"),
        ("busy_ns", _F64, "ns"),                 # since 1.2: summed over its instances
        ("flops", _I64, "count"),
        ("bytes", _I64, "B"),
        ("commands", _I64, "count"),
        ("energy_j", _F64, "J"),
        ("energy_memory_j", _F64, "J"),          # since 1.2, as are the three below
        ("energy_compute_j", _F64, "J"),
        ("energy_onchip_j", _F64, "J"),
        ("energy_communication_j", _F64, "J"),
        ("source", _STR, "1"),
        ("channels_simulated", _I64, "count"),
        ("channels_total", _I64, "count"),
        ("interference_ns", _F64, "ns"),         # since 1.4, as are the three below
        ("interference_cycles", _I64, "cycle"),
        ("interference_conflicts", _I64, "count"),
        ("blocked_cycles", _I64, "cycle"),
    ],
    RUN: [
        ("tokens", _I64, "count"),
        ("tokens_per_s", _F64, "1/s"),
        ("kernels", _I64, "count"),
        ("kernels_simulated", _I64, "count"),
        ("kernels_reused", _I64, "count"),
        ("kernels_modelled", _I64, "count"),
        ("symmetry", _BOOL, "1"),
        ("kernels_fused", _I64, "count"),        # since 1.2, as are the columns below
        ("decode_tokens", _I64, "count"),
        ("decode_seconds", _F64, "s"),
        ("decode_tokens_per_s", _F64, "1/s"),
        ("prefill_seconds", _F64, "s"),
        ("energy_j", _F64, "J"),
        ("energy_per_token_j", _F64, "J"),
        ("overcommitted", _BOOL, "1"),
        ("overlap_ns", _F64, "ns"),              # since 1.3: time two or more devices (not links) were busy at once
        ("interference_ns", _F64, "ns"),         # since 1.4: time kernels lost to another device's traffic
        ("static_power_w", _F64, "W"),           # since 1.5: every device's and memory's static power
        ("static_energy_j", _F64, "J"),          # since 1.5: static power x the run's makespan (in energy_j)
    ],
    DEVICE_ENERGY: [
        ("device", _STR, "1"),
        ("kind", _STR, "1"),
        ("memory_j", _F64, "J"),
        ("compute_j", _F64, "J"),
        ("onchip_j", _F64, "J"),
        ("communication_j", _F64, "J"),
        ("total_j", _F64, "J"),
        ("busy_ns", _F64, "ns"),                 # since 1.3: the union of its kernels' intervals
        ("static_w", _F64, "W"),                 # since 1.5: static power (idle or busy)
        ("static_j", _F64, "J"),                 # since 1.5: static_w x the run's makespan (in total_j)
    ],
    LAYERS: [
        ("layer", _I32, "1"),
        ("kernels", _I64, "count"),
        ("start_cycle", _I64, "cycle"),
        ("end_cycle", _I64, "cycle"),
        ("energy_j", _F64, "J"),
    ],
    STEPS: [
        ("step", _I32, "1"),
        ("phase", _STR, "1"),                    # since 1.2
        ("kernels", _I64, "count"),
        ("tokens", _I64, "count"),               # since 1.2
        ("start_cycle", _I64, "cycle"),
        ("end_cycle", _I64, "cycle"),
        ("start_ns", _F64, "ns"),                # since 1.2
        ("end_ns", _F64, "ns"),                  # since 1.2
        ("energy_j", _F64, "J"),
    ],
    # served streams (since 1.6)
    SERVE_SUMMARY: [
        ("requests", _I64, "count"),
        ("requests_completed", _I64, "count"),
        ("prompt_tokens", _I64, "count"),
        ("output_tokens", _I64, "count"),
        ("steps", _I64, "count"),
        ("prefill_steps", _I64, "count"),
        ("decode_steps", _I64, "count"),
        ("preemptions", _I64, "count"),
        ("simulated_seconds", _F64, "s"),        # last finish - first arrival
        ("busy_seconds", _F64, "s"),             # summed step times
        ("throughput_tokens_per_s", _F64, "1/s"),
        ("requests_per_s", _F64, "1/s"),
        ("ttft_mean_s", _F64, "s"),
        ("ttft_p50_s", _F64, "s"),
        ("ttft_p90_s", _F64, "s"),
        ("ttft_p99_s", _F64, "s"),
        ("tpot_mean_s", _F64, "s"),
        ("tpot_p50_s", _F64, "s"),
        ("tpot_p90_s", _F64, "s"),
        ("tpot_p99_s", _F64, "s"),
        ("latency_p50_s", _F64, "s"),
        ("latency_p99_s", _F64, "s"),
        ("slo_ttft_s", _F64, "s"),
        ("slo_tpot_s", _F64, "s"),
        ("slo_met_requests", _I64, "count"),
        ("goodput_tokens_per_s", _F64, "1/s"),
        ("energy_j", _F64, "J"),
        ("step_energy_j", _F64, "J"),
        ("idle_energy_j", _F64, "J"),
        ("energy_per_token_j", _F64, "J"),
        ("block_size", _I64, "count"),
        ("kv_block_bytes", _I64, "B"),
        ("kv_blocks", _I64, "count"),
        ("kv_capacity_bytes", _F64, "B"),
        ("kv_peak_blocks", _I64, "count"),
        ("kv_peak_bytes", _F64, "B"),
        ("composition_checks", _I64, "count"),
        ("composition_error_max", _F64, "1"),
        ("composition_error_mean", _F64, "1"),
        ("step_replays", _I64, "count"),
        ("wall_seconds", _F64, "s"),
    ],
    REQUESTS: [
        ("id", _I64, "1"),
        ("arrival_s", _F64, "s"),
        ("first_token_s", _F64, "s"),
        ("finish_s", _F64, "s"),
        ("prompt_tokens", _I64, "count"),
        ("output_tokens", _I64, "count"),
        ("preemptions", _I64, "count"),
        ("ttft_s", _F64, "s"),
        ("tpot_s", _F64, "s"),
    ],
    # kv_bytes_<memory> columns are inserted after `kv_blocks`, one per memory holding KV cache
    SERVE_STEPS: [
        ("step", _I64, "1"),
        ("start_s", _F64, "s"),
        ("seconds", _F64, "s"),
        ("phase", _STR, "1"),
        ("batch", _I64, "count"),
        ("waiting", _I64, "count"),
        ("tokens", _I64, "count"),
        ("output_tokens", _I64, "count"),
        ("preempted", _I64, "count"),
        ("swap_s", _F64, "s"),
        ("kv_blocks", _I64, "count"),
        ("energy_j", _F64, "J"),
    ],
    SERVE_CHECKS: [
        ("step", _I64, "1"),
        ("phase", _STR, "1"),
        ("composed_s", _F64, "s"),
        ("exact_s", _F64, "s"),
        ("error", _F64, "1"),
    ],
    KV_MEMORIES: [
        ("memory", _STR, "1"),
        ("capacity_bytes", _I64, "B"),
        ("weights_bytes", _I64, "B"),
        ("activations_bytes", _I64, "B"),
        ("share", _F64, "1"),
        ("kv_capacity_bytes", _F64, "B"),
        ("kv_peak_bytes", _F64, "B"),
    ],
    # level columns are inserted after `command`, one per organisation level
    COMMAND_LOG: [
        ("cycle", _I64, "cycle"),
        ("command", _U8, "1"),
        ("row", _I32, "1"),
        ("column", _I32, "1"),
    ],
}

#: Table attributes each standard table must have (name -> meaning), checked by standard_table.
_STANDARD_TABLE_ATTRS = {
    BANDWIDTH: ("window",),
}

STANDARD_TABLES = tuple(_STANDARD)


def command_column(name):
    """The `channels` column that counts command `name`."""
    return f"cmd_{name}"


def kv_bytes_column(memory):
    """The `serve_steps` column of the KV bytes in use in memory `memory`."""
    return f"kv_bytes_{memory}"


def standard_columns(table, command_names=(), levels=(), kv_memories=()):
    """The columns of a standard table in order, as a list of (name, numpy dtype, unit).

    `command_names` gives the `cmd_<NAME>` columns of `channels`; `levels` the per-level
    columns of `command_log` (in organisation order, starting with `channel`); `kv_memories`
    the `kv_bytes_<memory>` columns of `serve_steps`.
    """
    if table not in _STANDARD:
        raise KeyError(f"{table!r} is not a standard pimdram.stats table "
                       f"(standard tables: {', '.join(STANDARD_TABLES)})")
    columns = list(_STANDARD[table])
    if table == CHANNELS:
        columns[1:1] = [(command_column(n), _I64, "count") for n in command_names]
    elif table == COMMAND_LOG:
        columns[2:2] = [(str(level), _I32, "1") for level in levels]
    elif table == SERVE_STEPS:
        at = [c for c, _, _ in columns].index("kv_blocks") + 1
        columns[at:at] = [(kv_bytes_column(m), _F64, "B") for m in kv_memories]
    return columns


def standard_table_attrs(table):
    """Names of the table attributes a standard table must carry."""
    return _STANDARD_TABLE_ATTRS.get(table, ())
