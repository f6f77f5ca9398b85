"""Fault injection: what a hostile user, a full disk, a batch queue's signals and special files do to
pimdram. Every case ends in success or one error line and a non-zero exit, never a traceback, a
hang or a lost or leftover file (docs/reliability.md)."""
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pimdram import _atomic, _signals
from pimdram.cli import cli
from pimdram.config.memory import load_memory
from pimdram.errors import ConfigError, Interrupted, OutputError, PimdramError, TraceError, WorkloadError
from pimdram.replay import replay_requests
from pimdram.stats import open_stats
from pimdram.trace.requests import write_binary_trace

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "example_hbm2.dramsim3"      # 20,000 DRAMsim3 requests
CLI = [sys.executable, "-c", "import sys; from pimdram.cli import main; main(sys.argv[1:])"]


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def pimdram(*args, **kw):
    """The real executable in a subprocess (main(): signal handlers, exit codes)."""
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, timeout=120, **kw)


def one_error_line(result):
    """A CliRunner result: failed with one `Error:` line, no traceback."""
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp"))


# --- output paths --------------------------------------------------------------------------------

def test_a_fifo_as_output_is_refused_and_left_alone(tmp_path):
    fifo = tmp_path / "out.h5"
    os.mkfifo(fifo)
    line = one_error_line(invoke("replay", EXAMPLE, "-m", "hbm2_2gbps", "-o", fifo, "--overwrite"))
    assert line == f"Error: {fifo} is not a regular file (a device, pipe or socket); pimdram writes regular files only"
    assert fifo.is_fifo()


def test_the_input_trace_is_never_the_output(tmp_path):
    trace = tmp_path / "t.dramsim3"
    shutil.copy(EXAMPLE, trace)
    before = trace.read_bytes()
    line = one_error_line(invoke("replay", trace, "-m", "hbm2_2gbps", "-o", trace, "--overwrite"))
    assert "is also an input of this run" in line
    assert trace.read_bytes() == before
    # nor through another name for the same file
    alias = tmp_path / "alias.h5"
    os.link(trace, alias)
    assert "is also an input" in one_error_line(invoke("replay", trace, "-m", "hbm2_2gbps", "-o", alias, "--overwrite"))
    assert trace.read_bytes() == before


def test_a_yaml_input_is_never_the_output(tmp_path):
    config = tmp_path / "m.yaml"
    shutil.copy(ROOT / "configs" / "dram" / "hbm2_2gbps.yaml", config)
    before = config.read_bytes()
    line = one_error_line(invoke("replay", EXAMPLE, "-m", config, "-o", config, "--overwrite"))
    assert "is also an input" in line and config.read_bytes() == before


def test_a_symlink_output_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "real.h5"
    target.write_text("old")
    link = tmp_path / "link.h5"
    link.symlink_to(target.name)
    assert invoke("replay", EXAMPLE, "-m", "hbm2_2gbps", "-o", link, "--overwrite").exit_code == 0
    assert link.is_symlink() and os.readlink(link) == target.name
    with open_stats(target) as s:
        assert s.summary()["requests"] == 20000


@pytest.mark.parametrize("name, expected", [
    ("", "Error: Invalid value for '-o' / '--output': the file name is empty"),
    ("missing/out.h5", "Error: {tmp}/missing/out.h5: directory {tmp}/missing does not exist"),
    ("x" * 300 + ".h5", "Error: {tmp}/" + "x" * 300 + ".h5: cannot write there: File name too long"),
])
def test_bad_output_names_are_one_line(tmp_path, name, expected):
    out = tmp_path / name if name else name
    result = invoke("replay", EXAMPLE, "-m", "hbm2_2gbps", "-o", out)
    line = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert result.exit_code != 0 and len(line) == 1 and "Traceback" not in result.output
    assert expected.format(tmp=tmp_path) in line[0]
    assert leftovers(tmp_path) == []


def test_a_directory_as_output_is_refused(tmp_path):
    result = invoke("gen", "--model", "gpt2", "--system", "dgx-a100", "--batch", 1, "--prompt-tokens", 8,
                    "--output-tokens", 2, "-o", tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.output


def test_the_library_refuses_the_same_outputs(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputError, match="not a regular file"):
        replay_requests(EXAMPLE, "hbm2_2gbps", tmp_path / "fifo", overwrite=True)
    with pytest.raises(OutputError, match="also an input"):
        replay_requests(EXAMPLE, "hbm2_2gbps", EXAMPLE, overwrite=True)
    with pytest.raises(OutputError, match="the output file name is empty"):
        _atomic.output_path("")



GEN_SMALL = ["gen", "--model", "gpt2", "--system", "pim-only", "--batch", 1, "--prompt-tokens", 16,
             "--output-tokens", 2, "--layers", 1]


@pytest.mark.parametrize("args", [["replay", EXAMPLE, "-m", "hbm2_2gbps"], GEN_SMALL, ["config", "import", "x.ini"]],
                         ids=["replay", "gen", "config-import"])
def test_a_trailing_slash_or_a_dash_is_not_a_file_name(tmp_path, args):
    # Path("out/") is "out" and "-" would be a file named "-": both wrote a file the user did not mean
    result = invoke(*args, "-o", f"{tmp_path}/out/")
    assert result.exit_code == 2 and f"{tmp_path}/out/ names a directory; give a file name" in result.output
    result = invoke(*args, "-o", "-")
    assert result.exit_code == 2 and "not to standard output" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_output_name_too_long_is_one_line(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("model: gpt2\nsystem: dgx-a100\nbatch: 1\nprompt_tokens: 8\noutput_tokens: 2\n")
    out = tmp_path / ("x" * 300 + ".csv")
    line = one_error_line(invoke("sweep", sweep, "-o", out, "-j", 1))
    assert line.endswith("cannot write there: File name too long")


def test_a_base_file_read_by_the_run_is_never_its_output(tmp_path):
    # the output check knew only the files named on the command line, not those they name (base:)
    base = tmp_path / "mem.yaml"
    shutil.copy(ROOT / "configs" / "dram" / "hbm2_2gbps.yaml", base)
    child = tmp_path / "child.yaml"
    child.write_text("base: mem.yaml\nname: child\n")
    before = base.read_bytes()
    line = one_error_line(invoke("replay", EXAMPLE, "-m", child, "-o", base, "--overwrite"))
    assert line == f"Error: {base} is also an input of this run ({base}); write the output to another file"
    assert base.read_bytes() == before
    with pytest.raises(OutputError, match="also an input"):       # the library's entry point too
        replay_requests(EXAMPLE, str(child), base, overwrite=True)
    assert base.read_bytes() == before
    # outside a run, a file read earlier is no longer an input
    assert _atomic.output_path(base, overwrite=True) == base


@pytest.mark.parametrize("cache, message", [
    ("/dev/null", "Error: /dev/null: cannot be the sweep's cache directory: /dev/null is not a directory"),
    ("{tmp}/s.csv", "Error: {tmp}/s.csv: the cache directory cannot be the results table; give another --cache"),
    ("{tmp}/f/cache", "Error: {tmp}/f/cache: cannot be the sweep's cache directory: {tmp}/f is not a directory"),
])
def test_a_sweep_cache_that_cannot_be_one_is_refused_before_any_point(tmp_path, cache, message):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("model: gpt2\nsystem: dgx-a100\nbatch: 1\nprompt_tokens: 8\noutput_tokens: 2\n")
    (tmp_path / "f").write_text("a file")
    result = invoke("sweep", sweep, "-o", tmp_path / "s.csv", "--cache", cache.format(tmp=tmp_path), "-j", 1)
    assert one_error_line(result) == message.format(tmp=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "s.yaml"]

def test_a_stale_temporary_of_a_dead_process_is_removed_and_a_live_ones_kept(tmp_path):
    out = tmp_path / "out.h5"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _atomic._HOST
    stale = tmp_path / f".out.h5.pimdram-{host}-{dead.pid}-abcdefgh.tmp"
    live = tmp_path / f".out.h5.pimdram-{host}-{os.getpid()}-abcdefgh.tmp"
    other_host = tmp_path / f".out.h5.pimdram-elsewhere-{dead.pid}-abcdefgh.tmp"
    for p in (stale, live, other_host):
        p.write_bytes(b"x" * 1000)
    result = pimdram("replay", EXAMPLE, "-m", "hbm2_2gbps", "-o", out)
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and live.exists() and other_host.exists()
    assert leftovers(tmp_path) == sorted([live.name, other_host.name])


# --- full disk -------------------------------------------------------------------------------------

def _enospc_after(monkeypatch, module, name, budget):
    """Make module.name (a write function) fail with ENOSPC once `budget` bytes were written."""
    real = getattr(module, name)
    written = [0]

    def failing(*args):
        data = args[1]
        written[0] += len(memoryview(data).cast("B"))
        if written[0] > budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args)

    monkeypatch.setattr(module, name, failing)


def test_a_full_disk_during_a_command_log_is_one_error_and_no_temp(tmp_path, monkeypatch):
    from pimdram.stats import diskfile

    out = tmp_path / "out.h5"
    out.write_text("keep")
    _enospc_after(monkeypatch, diskfile.os, "pwrite", 200_000)
    with pytest.raises(OutputError, match=r"out.h5: cannot write: No space left on device"):
        replay_requests(EXAMPLE, "hbm2_2gbps", out, command_log=True, overwrite=True)
    assert out.read_text() == "keep" and leftovers(tmp_path) == []


def test_a_full_disk_writing_a_kernel_trace_is_one_error_and_no_temp(tmp_path, monkeypatch):
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(_atomic, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    result = invoke("gen", "--model", "gpt2", "--system", "dgx-a100", "--batch", 1, "--prompt-tokens", 8,
                    "--output-tokens", 2, "--layers", 1, "-o", tmp_path / "k.jsonl")
    assert one_error_line(result) == f"Error: {tmp_path / 'k.jsonl'}: cannot write: No space left on device"
    assert list(tmp_path.iterdir()) == []


def _private_mount_works():
    if shutil.which("unshare") is None:
        return False
    try:
        r = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && echo ok"],
                           capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.stdout.strip() == b"ok"


needs_private_mount = pytest.mark.skipif(not _private_mount_works(),
                                         reason="no unprivileged mount namespace (unshare -rm) here; "
                                                "the injected-OSError tests above cover the code paths")


def _in_private_tmpfs(tmp_path, options, command):
    """Run `command` (a shell string; $MNT is the mount point) in a private mount namespace with a
    tmpfs of `options` on $MNT; afterwards list $MNT. Returns (exit code, stdout, stderr)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (f'MNT={mnt}; mount -t tmpfs -o {options} tmpfs "$MNT" || exit 99; '
              f'{command}; rc=$?; echo "LISTING:$(ls -A "$MNT" | tr "\\n" " ")"; exit $rc')
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, timeout=300,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def _cli_string(*args):
    return " ".join(f"'{a}'" for a in CLI[:2]) + f" '{CLI[2]}' " + " ".join(f"'{a}'" for a in args)


@needs_private_mount
def test_a_real_full_disk_during_a_command_log(tmp_path):
    rc, out, err = _in_private_tmpfs(tmp_path, "size=64k",
                                     _cli_string("replay", EXAMPLE, "-m", "hbm2_2gbps", "--command-log",
                                                 "-o", "$MNT/out.h5").replace("'$MNT/out.h5'", '"$MNT/out.h5"'))
    assert rc == 1, err
    assert err.strip().splitlines() == [f"Error: {tmp_path}/mnt/out.h5: cannot write: No space left on device"]
    assert out.strip().endswith("LISTING:")


@needs_private_mount
def test_a_read_only_directory_is_one_line(tmp_path):
    rc, out, err = _in_private_tmpfs(tmp_path, "ro,size=64k",
                                     _cli_string("replay", EXAMPLE, "-m", "hbm2_2gbps")
                                     + ' -o "$MNT/out.h5"')
    assert rc == 1
    assert err.strip().splitlines() == [
        f"Error: {tmp_path}/mnt/out.h5: cannot write in directory {tmp_path}/mnt (read-only or no permission)"]


# --- signals ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def long_trace(tmp_path_factory):
    """Two million random requests: several seconds of replay, long enough to be stopped mid-run."""
    path = tmp_path_factory.mktemp("signals") / "long.bin"
    rng = np.random.default_rng(1)
    n = 2_000_000
    write_binary_trace(path, np.full(n, -1), rng.integers(0, 1 << 28, n) * 64, rng.integers(0, 2, n))
    return path


@pytest.mark.parametrize("command_log", [False, True], ids=["stats", "command-log"])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_stops_it_removes_the_temp_and_keeps_the_old_output(tmp_path, long_trace, signum, code,
                                                                            command_log):
    out = tmp_path / "out.h5"
    out.write_text("the result I want to keep")
    args = ["replay", long_trace, "-m", "hbm2_2gbps", "-o", out, "--overwrite"] + (["--command-log"] if command_log else [])
    proc = subprocess.Popen(CLI + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)                    # the stats file's temporary exists: the run is under way
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10, "the run did not stop promptly"
    assert proc.returncode == code, err
    assert err.decode().strip().splitlines()[-1] == f"pimdram: interrupted by {signal.Signals(signum).name}"
    assert "Traceback" not in err.decode()
    assert out.read_text() == "the result I want to keep"
    assert leftovers(tmp_path) == []


def test_a_signal_stops_a_run_that_lingers_inside_the_engine(tmp_path):
    """The engine polls Python's signal handlers from its loop: a run that spends minutes in one
    engine call (here every activate waits nRC = 2**28 cycles) stops within a second of a signal."""
    trace = tmp_path / "t.dramsim3"
    trace.write_text("".join(f"{hex(row << 28)} READ 0\n" for row in range(40)))      # 40 rows of one bank
    proc = subprocess.Popen(CLI + ["replay", str(trace), "-m", "hbm2_2gbps", "--set", f"timing.nRC={2**28}",
                                   "-o", str(tmp_path / "out.h5")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5 and proc.returncode == 130, err
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.h5").exists()


def test_a_pending_signal_stops_the_publish(tmp_path):
    """However a signal slipped past (swallowed in a callback), the rename never happens."""
    out = tmp_path / "out.h5"
    out.write_text("keep")
    _signals._pending = signal.SIGTERM
    try:
        with pytest.raises(Interrupted):
            replay_requests(EXAMPLE, "hbm2_2gbps", out, overwrite=True)
    finally:
        _signals.reset()
    assert out.read_text() == "keep" and leftovers(tmp_path) == []



@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("method", ["write", "seek"])
def test_a_signal_inside_hdf5s_file_callbacks_waits_for_the_next_step(tmp_path, signum, code, method):
    """HDF5 calls the stats file's GuardedFile from C, also where no deferred() section covers it
    (an h5py object freed as an exception unwinds). A signal raised in there became h5py's
    "Exception ignored", and closing the file then crashed the process (seen as SIGSEGV in about
    one run in eight when a --command-log replay was stopped). Here the signal arrives inside the
    callback every time; it must stop the run at its next step, cleanly."""
    out = tmp_path / "out.h5"
    out.write_text("keep")
    # the signal arrives in the first call outside the writer's deferred() sections
    script = f"""
import os, sys
from pimdram import _signals
from pimdram.stats.diskfile import GuardedFile
real = GuardedFile.{method}
_signals.called_back_from_c("<string>")     # this replacement is called from C as the method is
def {method}(self, *args):
    if _signals._depth == 0 and _signals.pending() is None:
        os.kill(os.getpid(), {int(signum)})
    return real(self, *args)
GuardedFile.{method} = {method}
from pimdram.cli import main
main(sys.argv[1:])
"""
    result = subprocess.run([sys.executable, "-c", script, "replay", str(EXAMPLE), "-m", "hbm2_2gbps",
                             "--command-log", "-o", str(out), "--overwrite"], capture_output=True, timeout=120)
    assert result.returncode == code, result.stderr.decode()[-2000:]
    assert result.stderr.decode().splitlines() == [f"pimdram: interrupted by {signal.Signals(signum).name}"]
    assert out.read_text() == "keep" and leftovers(tmp_path) == []


def _signalled_run(tmp_path, patch, args):
    """Run pimdram in a subprocess after `patch` (Python source run first, with os, sys, signal
    imported) and return the CompletedProcess."""
    script = f"import os, signal, sys\n{patch}\nfrom pimdram.cli import main\nmain(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", script] + [str(a) for a in args], capture_output=True,
                          timeout=120)


def test_a_signal_as_a_temporary_file_is_made_leaves_no_file(tmp_path):
    # the temporary existed before the code that removes it had its name: a signal in between left it
    out = tmp_path / "k.jsonl"
    out.write_text("keep")
    patch = """
import tempfile
real = tempfile.mkstemp
def mkstemp(*args, **kwargs):
    made = real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)
    return made
tempfile.mkstemp = mkstemp
"""
    result = _signalled_run(tmp_path, patch, GEN_SMALL + ["-o", out, "--overwrite"])
    assert result.returncode == 143, result.stderr.decode()[-2000:]
    assert result.stderr.decode().splitlines() == ["pimdram: interrupted by SIGTERM"]
    assert out.read_text() == "keep" and leftovers(tmp_path) == []


def test_a_signal_while_a_dask_cluster_starts_is_one_line(tmp_path):
    # interrupted half-built, the LocalCluster was left to Dask's exit handler, which failed with a
    # traceback after the "interrupted" line
    pytest.importorskip("distributed")
    sweep = tmp_path / "s.yaml"
    sweep.write_text("model: gpt2\nsystem: dgx-a100\nbatch: 1\nprompt_tokens: 8\noutput_tokens: 2\n")
    patch = """
import distributed
real = distributed.Nanny.__init__
def __init__(self, *args, **kwargs):     # a worker of the cluster is made, not started
    real(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGINT)
distributed.Nanny.__init__ = __init__
"""
    result = _signalled_run(tmp_path, patch, ["sweep", sweep, "-o", tmp_path / "s.csv", "--executor", "dask",
                                              "-j", 1])
    assert result.returncode == 130, result.stderr.decode()[-2000:]
    assert result.stderr.decode().splitlines() == ["pimdram: interrupted by SIGINT"]
    assert not (tmp_path / "s.csv").exists() and leftovers(tmp_path) == []

# --- numbers, in every section, from a file and from --set ---------------------------------------

BAD_MEMORY_VALUES = [
    ("timing.tCK", float("nan"), "timing.tCK: must be a finite number, got nan"),
    ("timing.tCK", float("inf"), "timing.tCK: must be a finite number, got inf"),
    ("timing.nRC", "1e999", "timing.nRC: must be a finite number, got '1e999' (= inf)"),
    ("timing.nRC", 10**30, "timing.nRC: must be at most 268435456 cycles"),
    ("timing.tRC", 1e300, "timing.tRC: 1e+300 is 1e+300 cycles of tCK 1.0 ns; at most 268435456 cycles"),
    ("organization.rows", 2**40, "organization.rows: must be at most 2147483647"),
    ("organization.levels", [{"name": "channel", "count": 2**20}, {"name": "bank", "count": 4}],
     "organization.levels[0].count: must be at most 65536"),
    ("controller.read_queue", 99999999999, "controller.read_queue: must be at most 16777216"),
    ("controller.read_queue", 1e9, "controller.read_queue: must be at most 16777216"),
    ("controller.write_high_watermark", float("nan"), "controller.write_high_watermark: must be a finite number"),
    ("controller.bank_queue", 100_000, "controller.bank_queue: read_queue + write_queue + bank_queue x banks gives"),
    ("power.IDD0", float("inf"), "power.IDD0: must be a finite number, got inf"),
    ("power.IDD0", -1, "power.IDD0: must not be negative, got -1"),
    ("address_mapping", [["row", 80]], "address_mapping[0]: expected [field, bits]"),
]


@pytest.mark.parametrize("key, value, message", BAD_MEMORY_VALUES, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD_MEMORY_VALUES])
def test_a_bad_memory_number_from_set_names_set(key, value, message):
    with pytest.raises(ConfigError) as info:
        load_memory("hbm2_2gbps", {key: value})
    text = str(info.value)
    assert message in text, text
    if "[" not in message.split(":")[0]:
        assert text.startswith(f"--set {message.split(':')[0]}"), text


@pytest.mark.parametrize("key, value, message", BAD_MEMORY_VALUES[:9], ids=[f"{k}" for k, v, _ in BAD_MEMORY_VALUES[:9]])
def test_a_bad_memory_number_in_a_file_names_the_file(tmp_path, key, value, message):
    import yaml

    from pimdram.config.files import load_yaml
    raw = load_yaml(ROOT / "configs" / "dram" / "hbm2_2gbps.yaml")
    node = raw
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    if leaf.startswith("n") and ("t" + leaf[1:]) in node:
        node.pop("t" + leaf[1:])
    if leaf.startswith("t") and ("n" + leaf[1:]) in node:
        node.pop("n" + leaf[1:])
    node[leaf] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as info:
        load_memory(path)
    assert str(info.value).startswith(f"{path}: "), str(info.value)
    assert message.split(",")[0].split(": ", 1)[1][:20] in str(info.value)


def test_bad_numbers_reach_the_cli_as_one_line_from_set(tmp_path):
    line = one_error_line(invoke("replay", EXAMPLE, "-m", "hbm2_2gbps", "--set", "timing.tCK=.nan", "-o",
                                 tmp_path / "x.h5"))
    assert line == "Error: --set timing.tCK: must be a finite number, got nan"
    line = one_error_line(invoke("replay", EXAMPLE, "-m", "hbm2_2gbps", "--set", "controller.read_queue=1e9", "-o",
                                 tmp_path / "x.h5"))
    assert "YAML reads exponent notation without a dot as text" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key, value, message", [
    ("memories.gpu_hbm.stacks", 10**12, "memories.gpu_hbm.stacks: must be at most 1048576"),
    ("devices.gpu.peak_tflops", float("inf"), "devices.gpu.peak_tflops: must be a finite number"),
    ("devices.gpu.count", 10**9, "devices.gpu.count: must be at most 65536"),
    ("links.nvlink.latency_us", float("nan"), "links.nvlink.latency_us: must be a finite number"),
    ("devices.gpu.energy.mac_pj", float("inf"), "devices.gpu.energy.mac_pj: must be a finite number"),
    ("mapping.head_groups", 10**9, "mapping.head_groups: expected a positive integer"),
    ("options.power_limit", "x", "--set options.power_limit: unknown choice 'x'"),   # a PIM design's option
    ("timing.nCCD_AB", float("nan"), "--set timing.nCCD_AB: must be a finite number"),   # the PIM design's timing
])
def test_bad_system_numbers_name_the_key_and_set(key, value, message):
    from pimdram.config.system import load_system
    with pytest.raises(ConfigError) as info:
        load_system("dgx-attacc", {key: value})
    assert message in str(info.value) and "--set" in str(info.value), str(info.value)


def test_bad_model_numbers_and_huge_workloads_fail_before_any_work(tmp_path):
    from pimdram.llm.models import load_model
    from pimdram.llm.workload import Workload
    model = tmp_path / "deep.yaml"
    text = (ROOT / "tests" / "data" / "llm" / "tiny-mha.yaml").read_text()
    model.write_text("\n".join("num_hidden_layers: 1000000" if line.startswith("num_hidden_layers")
                               else line for line in text.splitlines()))
    with pytest.raises(ConfigError, match="layers must be at most 16384, got 1000000"):
        load_model(model)
    started = time.perf_counter()
    with pytest.raises(WorkloadError, match="batch 1000000000: at most 65536 requests"):
        Workload.uniform(10**9, 16, 2)
    assert time.perf_counter() - started < 1


def test_a_workload_that_cannot_fit_fails_before_its_kernels_are_built(tmp_path):
    started = time.perf_counter()
    result = invoke("gen", "--model", "llama3-8b", "--system", "dgx-a100", "--batch", 60000, "--prompt-tokens",
                    4096, "--output-tokens", 2, "-o", tmp_path / "k.jsonl")
    line = one_error_line(result)
    # 60,000 requests x 4,098 tokens x 128 KiB of KV cache, plus 16 GB of weights, on 640 GiB of HBM
    assert line.startswith("Error: the workload does not fit memory 'gpu_hbm' of system dgx-a100: capacity 687.2 GB "
                           "(40 stacks), needed weights 16.1 GB + KV cache 32220.1 GB = 32236.2 GB before activations "
                           "(60000 requests)")
    assert time.perf_counter() - started < 20 and list(tmp_path.iterdir()) == []


def test_a_kernel_with_a_trillion_instances_is_one_error(tmp_path):
    import json
    trace = tmp_path / "k.jsonl"
    assert invoke("gen", "--model", "gpt2", "--system", "attacc-stack-bank", "--batch", 1, "--prompt-tokens", 64,
                  "--output-tokens", 1, "--layers", 1, "--only", "attention", "-o", trace).exit_code == 0
    lines = trace.read_text().splitlines()
    for i, line in enumerate(lines[1:], start=1):
        k = json.loads(line)
        if k["name"] == "attention_score":
            k["shape"]["instances"] = 10**12
            lines[i] = json.dumps(k)
    trace.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    line = one_error_line(invoke("replay", trace, "-o", tmp_path / "k.h5"))
    assert "rows per bank" in line and time.perf_counter() - started < 30


def test_a_seed_beyond_64_bits_is_refused_before_the_run(tmp_path):
    result = invoke("replay", EXAMPLE, "-m", "hbm2_2gbps", "--seed", 2**70, "-o", tmp_path / "x.h5")
    assert result.exit_code == 2 and "is not in the range 0<=x<=9223372036854775807" in result.output



@pytest.fixture(scope="module")
def logged_stats(tmp_path_factory):
    """A small request replay with its command log."""
    out = tmp_path_factory.mktemp("logged") / "log.h5"
    trace = out.parent / "t.dramsim3"
    trace.write_text("".join(EXAMPLE.read_text().splitlines(keepends=True)[:500]))
    assert invoke("replay", trace, "-m", "hbm2_2gbps", "--command-log", "-o", out).exit_code == 0
    return out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_float_options_refuse_nan_and_infinity(tmp_path, logged_stats, value):
    # "nan" passes click.FloatRange (every comparison with it is false) and reached int(): a traceback
    for slack in (value, "1e308"):        # 1e308 refresh intervals overflowed int() as well
        result = invoke("check", logged_stats, "--refresh-slack", slack)
        assert result.exit_code == 2 and "Invalid value for '--refresh-slack'" in result.output
        assert "Traceback" not in result.output
    result = invoke("plot", "timeline", logged_stats, "--window", f"0:{value}", "-o", tmp_path / "t.png")
    assert result.exit_code == 2 and "Invalid value for '--window'" in result.output
    trace = tmp_path / "k.jsonl"
    assert invoke(*GEN_SMALL, "-o", trace).exit_code == 0
    result = invoke("replay", trace, "--interference", "--interference-sampled", "--interference-window", value,
                    "-o", tmp_path / "k.h5")
    assert result.exit_code == 2 and "Invalid value for '--interference-window'" in result.output
    assert not (tmp_path / "k.h5").exists() and not (tmp_path / "t.png").exists()


def test_the_checker_refuses_a_slack_it_cannot_count():
    spec = load_memory("hbm2_2gbps")
    from pimdram.check import LogChecker
    for slack in (float("nan"), float("inf"), 0.5, True):
        with pytest.raises(ValueError, match="refresh_slack"):
            LogChecker(spec, refresh_slack=slack)


@pytest.mark.parametrize("only", ["", ",,,", " , "])
def test_an_empty_only_is_an_error_not_everything(tmp_path, only):
    # an empty --only kept every kernel: a trace of what was not asked for
    line = one_error_line(invoke(*GEN_SMALL, "--only", only, "-o", tmp_path / "k.jsonl"))
    assert line == "Error: --only names no kernel kind; give kinds, ops or kernel names, comma-separated"
    assert list(tmp_path.iterdir()) == []


def test_plot_refuses_a_text_axis_and_an_image_too_large(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("model: gpt2\nsystem: dgx-a100\nbatch: [1, 2]\nprompt_tokens: 8\noutput_tokens: 2\n")
    table = tmp_path / "s.csv"
    assert invoke("sweep", sweep, "-o", table, "--no-cache", "-j", 1).exit_code == 0
    line = one_error_line(invoke("plot", "throughput", table, "--y", "status", "-o", tmp_path / "a.png"))
    assert line == "Error: column 'status' (for --y) holds text, not numbers; choose a numeric column"
    result = invoke("plot", "throughput", table, "--dpi", 10**8, "-o", tmp_path / "a.png")
    assert result.exit_code == 2 and "is not in the range 10<=x<=1200" in result.output
    assert not (tmp_path / "a.png").exists() and leftovers(tmp_path) == []

def test_duplicate_yaml_keys_are_an_error(tmp_path):
    text = (ROOT / "configs" / "dram" / "hbm2_2gbps.yaml").read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("controller:"))
    lines[at + 1:at + 1] = ["  read_queue: 8", "  read_queue: 16"]
    path = tmp_path / "dup.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=rf"dup.yaml:{at + 3}: invalid YAML: duplicate key 'read_queue' "
                                          rf"\(first given on line {at + 2}\)"):
        load_memory(path)


# --- traces that are not plain files ---------------------------------------------------------------

def test_a_trace_on_standard_input(tmp_path):
    out = tmp_path / "s.h5"
    result = pimdram("replay", "-", "-m", "hbm2_2gbps", "-o", out, input=EXAMPLE.read_bytes())
    assert result.returncode == 0, result.stderr
    with open_stats(out) as s:
        assert s.summary()["requests"] == 20000


def test_dev_stdin_and_a_pipe_are_read_once(tmp_path):
    out = tmp_path / "s.h5"
    result = subprocess.run(f"cat '{EXAMPLE}' | " + " ".join(f"'{a}'" for a in CLI)
                            + f" replay /dev/stdin -m hbm2_2gbps -o '{out}'", shell=True, capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    with open_stats(out) as s:
        assert s.summary()["requests"] == 20000


def test_a_fifo_is_read_once(tmp_path):
    fifo = tmp_path / "trace"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as f:
            f.write(EXAMPLE.read_bytes())

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        result = pimdram("replay", fifo, "-m", "hbm2_2gbps", "-o", tmp_path / "f.h5")
    finally:
        writer.join(timeout=30)
    assert result.returncode == 0, result.stderr
    with open_stats(tmp_path / "f.h5") as s:
        assert s.summary()["requests"] == 20000


def test_a_kernel_trace_on_standard_input(tmp_path):
    trace = tmp_path / "k.jsonl"
    assert invoke("gen", "--model", "gpt2", "--system", "dgx-a100", "--batch", 1, "--prompt-tokens", 8,
                  "--output-tokens", 2, "--layers", 1, "-o", trace).exit_code == 0
    result = pimdram("replay", "-", "-o", tmp_path / "k.h5", input=trace.read_bytes())
    assert result.returncode == 0, result.stderr


def test_dev_zero_is_a_line_too_long_not_a_memory_blow_up(tmp_path):
    result = pimdram("replay", "/dev/zero", "-m", "hbm2_2gbps", "-o", tmp_path / "z.h5")
    assert result.returncode == 1
    assert result.stderr.decode().strip() == ("Error: /dev/zero:1: line longer than 1048576 bytes (no newline), "
                                              "expected request lines like '0x1f40 READ 12' or 'LD 0x1f40'")


def test_an_overlong_line_names_its_line(tmp_path):
    trace = tmp_path / "t.ramulator"
    trace.write_bytes(b"LD 0x0\nLD 0x40\n" + b"a" * (3 << 20))
    with pytest.raises(TraceError, match=r"t.ramulator:3: line longer than 1048576 bytes"):
        replay_requests(trace, "hbm2_2gbps", tmp_path / "x.h5")


def test_an_empty_or_malformed_kernel_trace_is_not_asked_for_memory(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert one_error_line(invoke("replay", empty, "-o", tmp_path / "x.h5")) == (
        f"Error: {empty}: the file is empty, expected a request trace (with --memory) or a kernel trace (pimdram gen)")
    other = tmp_path / "other.jsonl"
    other.write_text('{"foo": 1}\n')
    assert "not a pimdram kernel trace" in one_error_line(invoke("replay", other, "-o", tmp_path / "x.h5"))
    junk = tmp_path / "junk.txt"
    junk.write_text("hello world\n")
    assert "cannot tell the request-trace format from 'hello world'" in one_error_line(
        invoke("replay", junk, "-o", tmp_path / "x.h5"))



def _small_kernel_trace(tmp_path):
    import json
    path = tmp_path / "k.jsonl"
    assert invoke(*GEN_SMALL, "-o", path).exit_code == 0
    lines = path.read_text().splitlines()
    return path, json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


@pytest.mark.parametrize("edit, message", [
    (lambda h, ks: ks[3].update(step=10**9), ":5: 'step' 1000000000 is not the first step of a run of template 0"),
    (lambda h, ks: ks[3].update(kv_heads=[12, 0]), ":5: 'kv_heads' must be [lo, hi] with 0 <= lo <= hi"),
    (lambda h, ks: ks[3].update(tokens=[-1, 5]), ":5: 'tokens' must be [lo, hi] with 0 <= lo <= hi"),
    (lambda h, ks: ks[3].update(requests=[77]), ":5: request 77 is not one of the header's workload.requests"),
    (lambda h, ks: ks[3]["operands"][0].update(dtype="fp7"), "dtype must be one of fp32, fp16, bf16, int8, int4"),
    (lambda h, ks: ks[3]["operands"][0].update(shape=[1, -1]), "shape must be a list of non-negative integers"),
    (lambda h, ks: h.update(version=[True, False]), "header version must be [major, minor]"),
], ids=["step", "kv_heads", "tokens", "requests", "dtype", "operand-shape", "bool-version"])
def test_hand_edited_kernel_fields_the_validator_skipped_are_errors(tmp_path, edit, message):
    # each was accepted; a kernel's step outside the header's steps doubled tokens/s
    import json
    path, header, kernels = _small_kernel_trace(tmp_path)
    edit(header, kernels)
    path.write_text("".join(json.dumps(x) + "\n" for x in [header] + kernels))
    line = one_error_line(invoke("replay", path, "-o", tmp_path / "x.h5"))
    assert message in line, line
    assert not (tmp_path / "x.h5").exists()


def test_a_damaged_stats_file_is_one_line_for_every_reader(tmp_path, logged_stats):
    # a corrupt heap inside an HDF5 file was h5py's RuntimeError, a traceback, in report and plot
    damaged = tmp_path / "d.h5"
    data = bytearray(logged_stats.read_bytes())
    at = data.find(b"HEAP")
    data[at:at + 4] = b"JUNK"
    damaged.write_bytes(bytes(data))
    for args in (["report", damaged], ["report", damaged, "--json"], ["check", damaged],
                 ["plot", "latency", damaged, "-o", tmp_path / "l.png"]):
        line = one_error_line(invoke(*args))
        assert line.startswith(f"Error: {damaged}: damaged or incomplete HDF5 file ("), (args, line)
    long = tmp_path / ("z" * 300 + ".h5")
    assert one_error_line(invoke("report", long)) == f"Error: {long}: cannot read (File name too long)"


def test_damage_inside_a_columns_data_is_an_error_not_a_wrong_number(tmp_path, logged_stats):
    # every numeric column with rows carries a Fletcher-32 checksum: a flipped byte in its data
    # (which HDF5's own structures do not cover) fails the read instead of giving another number
    import h5py

    with h5py.File(logged_stats, "r") as f:
        ds = f["tables/summary/cycles"]
        assert ds.fletcher32 and ds.shape[0] == 1
        offset = ds.id.get_chunk_info(0).byte_offset
    damaged = tmp_path / "d.h5"
    data = bytearray(logged_stats.read_bytes())
    data[offset] ^= 0xFF
    damaged.write_bytes(bytes(data))
    for args in (["report", damaged], ["report", damaged, "--json"]):
        line = one_error_line(invoke(*args))
        assert line.startswith(f"Error: {damaged}: damaged or incomplete HDF5 file ("), (args, line)


def test_a_binary_file_as_a_sweep_table_is_one_line(tmp_path):
    table = tmp_path / "s.csv"
    table.write_bytes(bytes(range(256)) * 8)
    line = one_error_line(invoke("plot", "throughput", table, "-o", tmp_path / "t.png"))
    assert line == f"Error: {table}: not UTF-8 text at byte 128; not a pimdram.sweep-results table"


@pytest.mark.parametrize("key", ["tie_word_embeddings", "attention_bias", "mlp_bias"])
def test_a_config_json_flag_written_as_text_is_an_error_not_true(tmp_path, key):
    # bool("false") is True: "tie_word_embeddings": "false" tied the embeddings
    import json
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 2,
                                  "num_attention_heads": 8, "intermediate_size": 1024, "vocab_size": 1000,
                                  key: "false"}))
    line = one_error_line(invoke("model", "show", config))
    assert line == f"Error: {config}: {key} must be true or false, got 'false'"


def test_a_non_finite_override_in_a_sweep_file_is_refused_before_any_point(tmp_path):
    # NaN ran the points, then reached the table's JSON metadata: a traceback after the whole sweep
    sweep = tmp_path / "s.yaml"
    sweep.write_text("model: gpt2\nsystem: dgx-attacc\nbatch: 1\nprompt_tokens: 8\noutput_tokens: 2\n"
                     "set.mapping.head_groups: .nan\n")
    line = one_error_line(invoke("sweep", sweep, "-o", tmp_path / "s.csv", "--no-cache", "-j", 1))
    assert line == f"Error: {sweep}: set.mapping.head_groups: expected a finite number, got nan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_a_broken_sweep_cache_costs_a_rerun_not_the_sweep(tmp_path):
    # a cache entry with text for a metric was a traceback after every point had run; a directory in
    # an entry's place failed the sweep at the first point
    import json
    sweep = tmp_path / "s.yaml"
    sweep.write_text("model: gpt2\nsystem: dgx-a100\nbatch: [1, 2]\nprompt_tokens: 8\noutput_tokens: 2\n")
    assert invoke("sweep", sweep, "-o", tmp_path / "a.csv", "-j", 1).exit_code == 0
    entries = sorted((tmp_path / ".pimdram-cache").rglob("*.json"))
    assert len(entries) == 2
    record = json.loads(entries[0].read_text())
    record["metrics"]["tokens_per_s"] = "fast"
    entries[0].write_text(json.dumps(record))
    entries[1].unlink()
    entries[1].mkdir()
    result = invoke("sweep", sweep, "-o", tmp_path / "b.csv", "-j", 1)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings_ = [line for line in result.output.splitlines() if line.startswith("Warning: the sweep cache is not kept")]
    assert len(warnings_) == 1 and "is a directory" in warnings_[0]
    assert "2 points (2 run, 0 failed, 0 from the cache)" in result.output

# --- idle gaps and true stalls ------------------------------------------------------------------

def test_an_idle_gap_of_thirty_million_cycles_is_not_a_stall(tmp_path):
    trace = tmp_path / "gap.dramsim3"
    trace.write_text("0x0 READ 0\n0x40 READ 30000000\n")
    for overrides in ({}, {"controller.refresh": "none"}):
        result = replay_requests(trace, "hbm2_2gbps", tmp_path / "g.h5", overrides=overrides, overwrite=True)
        # the second read arrives at cycle 30,000,000 and hits the open row: nCL + nBL/2 later it is done
        assert result.summary["requests"] == 2 and 30_000_000 < result.summary["cycles"] < 30_000_100



def test_a_request_ten_trillion_cycles_in_is_counted_not_a_crash(tmp_path):
    # the bandwidth series' bin was an int: at 10**13 cycles it wrapped and wrote outside the series
    trace = tmp_path / "late.dramsim3"
    trace.write_text("0x0 READ 0\n0x40 READ 10000000000000\n")
    result = pimdram("replay", trace, "-m", "hbm2_2gbps", "--set", "controller.refresh=none", "-o", tmp_path / "l.h5")
    assert result.returncode == 0, result.stderr
    with open_stats(tmp_path / "l.h5") as s:
        assert s.summary()["requests"] == 2 and 10**13 < s.summary()["cycles"] < 10**13 + 100


@pytest.mark.parametrize("cycle", [2**60 + 1, 2**62, 2**63 - 1])
def test_an_arrival_beyond_the_engines_range_is_a_line_error(tmp_path, cycle):
    # at 2**62 (the engine's "no event") a request was a false stall at cycle 20; past 2**60 time
    # plus a latency could overflow
    trace = tmp_path / "far.dramsim3"
    trace.write_text(f"0x0 READ 0\n0x40 READ {cycle}\n")
    line = one_error_line(invoke("replay", trace, "-m", "hbm2_2gbps", "-o", tmp_path / "f.h5"))
    assert line == (f"Error: {trace}:2: arrival cycle {cycle} is beyond the latest cycle the simulator counts, "
                    "expected a cycle of at most 2**60")
    with pytest.raises(TraceError, match="beyond the latest cycle"):
        write_binary_trace(tmp_path / "far.bin", [0, cycle], [0, 64], [0, 0])
    assert leftovers(tmp_path) == []


def test_memory_system_arguments_are_checked_where_they_enter():
    from pimdram import MemorySystem
    from pimdram.errors import UsageError
    ms = MemorySystem("hbm2_2gbps")
    # a float address was truncated, NaN made the host clock NaN, strings failed deep inside
    for call, message in [
            (lambda: ms.send(1.5), "the address must be a whole number, got 1.5"),
            (lambda: ms.send("0x100"), "must be a whole number"),
            (lambda: ms.send(64, is_write="yes"), "is_write must be True or False"),
            (lambda: ms.send(64, size=-1), "size must lie in 0..2**63-1"),
            (lambda: ms.tick(float("nan")), "tick(n): n must be a whole number, got nan"),
            (lambda: ms.tick(1.5), "must be a whole number"),
            (lambda: ms.tick(2**70), "is beyond the latest the engine counts, 2**60"),
            (lambda: ms.run_until(2**61), "at most 2**60"),
            (lambda: ms.send_batch([64, 128], arrival=[0, 2**61]), "arrival: values must lie in"),
            (lambda: ms.send_batch([0.5, 64]), "addresses: expected whole numbers"),
            (lambda: ms.send_batch(np.zeros((2, 2), np.uint64)), "expected one value per request"),
            (lambda: ms.send_batch([64], is_write=[2]), "is_write: values must lie in 0..1")]:
        with pytest.raises(UsageError) as info:
            call()
        assert message in str(info.value)
    assert ms.cycle == 0 and ms.host_cycle == 0 and ms.outstanding == 0
    for kwargs, message in [({"clock_ratio": float("nan")}, "finite positive number"),
                            ({"clock_ratio": float("inf")}, "finite positive number"),
                            ({"clock_ratio": "2"}, "finite positive number"),
                            ({"clock_ratio": 1e300}, "must lie in 1e-6..1e6"),
                            ({"host_clock_ghz": float("nan")}, "finite positive number"),
                            ({"overrides": ["controller.read_queue=8"]}, "overrides: expected a mapping")]:
        with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
            MemorySystem("hbm2_2gbps", **kwargs)
    with pytest.raises(UsageError, match="on_complete must be a function"):
        MemorySystem("hbm2_2gbps", on_complete=5)

def test_a_valid_large_nrc_is_not_a_stall(tmp_path):
    trace = tmp_path / "conflicts.dramsim3"
    # three rows of one bank: each activate waits nRC = 15,000,000 cycles after the one before
    trace.write_text("0x0 READ 0\n0x40000000 READ 0\n0x80000000 READ 0\n")
    spec = load_memory("hbm2_2gbps", {"timing.nRC": 15_000_000, "controller.refresh": "none"})
    result = replay_requests(trace, spec, tmp_path / "n.h5")
    assert result.summary["requests"] == 3 and result.summary["cycles"] > 30_000_000


def test_queued_work_that_cannot_progress_is_still_a_stall():
    from pimdram._engine import Engine
    from pimdram.errors import SimulationError
    from pimdram.replay import engine_params

    spec = load_memory("hbm2_2gbps", {"timing.nRC": 50_000, "controller.refresh": "none"})
    params = dict(engine_params(spec), stall_limit=10_000)
    engine = Engine(params)
    # an idle gap of 1,000,000 cycles first: not a stall ...
    engine.feed(np.array([0, 0x40], np.uint64), np.zeros(2, np.uint8), np.array([0, 1_000_000], np.int64))
    engine.run(True)
    # ... but two rows of one bank queued, the second waiting nRC = 50,000 > the limit: a stall
    engine.feed(np.array([0x40000000, 0x80000000], np.uint64), np.zeros(2, np.uint8), np.full(2, -1, np.int64))
    with pytest.raises(SimulationError, match="stalled .* no progress for 10000 cycles"):
        engine.run(True)


# --- check: streamed, bounded, the whole log's verdicts -----------------------------------------------

def test_check_in_chunks_gives_the_verdicts_of_the_whole_log():
    from pimdram._engine import Engine
    from pimdram.check import check_command_log
    from pimdram.replay import CommandLogExpander, engine_params

    spec = load_memory("ddr4_3200")
    rng = np.random.default_rng(2)
    n = 3000
    engine = Engine(engine_params(spec, command_log=True))
    engine.feed((rng.integers(0, 1 << 22, n) * 64).astype(np.uint64), (rng.random(n) < 0.3).astype(np.uint8),
                np.cumsum(rng.integers(0, 30, n)).astype(np.int64))
    engine.run(True)
    log = CommandLogExpander(engine, spec)(engine.take_log())
    for i in rng.integers(1, len(log["cycle"]), 40):        # planted: timing, bus and order violations
        log["cycle"][i] = log["cycle"][i - 1] - (i % 5 == 0)
    log["bank"][100] = 99                                    # an address violation
    reads = np.flatnonzero(log["command"] == spec.command_index("RD"))
    log["row"][reads[len(reads) // 2]] += 1                  # a read of a row that is not open
    whole = check_command_log(spec, log, max_examples=50, refresh_slack=1.0, chunk_size=len(log["cycle"]))
    assert not whole.ok and all(whole.violations_by_rule.values()) and whole.n_warnings
    for chunk_size in (97, 1000):
        part = check_command_log(spec, log, max_examples=50, refresh_slack=1.0, chunk_size=chunk_size)
        assert (part.n_commands, part.violations_by_rule, part.violations, part.n_warnings, part.warnings) == \
            (whole.n_commands, whole.violations_by_rule, whole.violations, whole.n_warnings, whole.warnings)


def test_check_streams_a_stats_file_and_draws_a_bar(tmp_path):
    stats = tmp_path / "r.h5"
    replay_requests(EXAMPLE, "hbm2_2gbps", stats, command_log=True)
    from pimdram.check import check_stats_file
    whole = check_stats_file(stats, chunk_size=10**9)
    part = check_stats_file(stats, chunk_size=5000)
    assert whole.ok and part.ok and part.n_commands == whole.n_commands == 55932
    result = invoke("check", stats, "--progress")
    assert result.exit_code == 0 and "checking" in result.output


def test_check_of_a_kernel_replay_without_pim_commands_succeeds(tmp_path):
    trace = tmp_path / "k.jsonl"
    assert invoke("gen", "--model", "gpt2", "--system", "dgx-a100", "--batch", 1, "--prompt-tokens", 8,
                  "--output-tokens", 2, "--layers", 1, "-o", trace).exit_code == 0
    assert invoke("replay", trace, "--command-log", "-o", tmp_path / "k.h5").exit_code == 0
    result = invoke("check", tmp_path / "k.h5")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"{tmp_path / 'k.h5'}: no commands to check: the run issued none (a kernel "
                                     "replay whose kernels were all modelled, none simulated at command level)")


# --- configs: relative base, --set blame --------------------------------------------------------------

def test_a_relative_base_is_found_beside_its_yaml_not_in_the_working_directory(tmp_path, monkeypatch):
    sub = tmp_path / "configs"
    sub.mkdir()
    shutil.copy(ROOT / "configs" / "dram" / "hbm2_2gbps.yaml", sub / "mybase.yaml")
    (sub / "derived.yaml").write_text("base: ./mybase.yaml\nname: derived\ncontroller:\n  read_queue: 16\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_memory(sub / "derived.yaml")
    assert spec.name == "derived" and spec.controller.read_queue == 16
    (sub / "system.yaml").write_text("base: ../configs/../configs/sysbase.yaml\nname: mine\n")
    shutil.copy(ROOT / "configs" / "systems" / "dgx-a100.yaml", sub / "sysbase.yaml")
    from pimdram.config.system import load_system
    assert load_system(sub / "system.yaml").name == "mine"


def test_set_errors_do_not_blame_the_preset_file():
    with pytest.raises(ConfigError) as info:
        load_memory("hbm2_2gbps", {"controller.nonsense": 1})
    assert str(info.value) == "--set controller.nonsense: unknown key"
    with pytest.raises(ConfigError) as info:
        load_memory("attacc-bank", {"options.nonsense": "x"})
    assert str(info.value).startswith("--set options.nonsense: no such option")


# --- generation memory ---------------------------------------------------------------------------

def test_a_long_generation_does_not_grow_its_trace_or_memory_with_the_output_length():
    import tracemalloc

    from pimdram.llm import Workload
    from pimdram.mapping import generate_kernel_trace

    peaks, sizes = [], []
    for output in (64, 4096):
        tracemalloc.start()
        trace = generate_kernel_trace("gpt2", "dgx-a100", Workload.uniform(2, 16, output, phase="generate"))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        sizes.append(len(trace))
    # a prefill template and one decode template whose attention grows: the same kernels for any length
    assert sizes[0] == sizes[1]
    assert peaks[1] < 2 * peaks[0], peaks


def test_a_signal_stops_a_sweep_on_a_process_pool_at_once(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("model: gpt2\nsystem: dgx-a100\nbatch: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]\n"
                     "prompt_tokens: 64\noutput_tokens: 64\nphase: generate\nlayers: 2\n")
    out = tmp_path / "s.csv"
    proc = subprocess.Popen(CLI + ["sweep", str(sweep), "-o", str(out), "-j", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    cache = tmp_path / ".pimdram-cache"
    deadline = time.monotonic() + 60
    while not list(cache.rglob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)                    # a point has finished: the pool is busy with the next ones
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10 and proc.returncode == 143, err
    assert err.decode().strip().splitlines() == ["pimdram: interrupted by SIGTERM"]
    # (a worker killed while writing a cache entry may leave its temporary there: the next run that
    # finishes that point removes it, as for any dead process's temporary)
    assert not out.exists() and not [p for p in tmp_path.glob("*.tmp")]
