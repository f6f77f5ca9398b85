"""Does an engine change keep every issued command the same? Command logs of every memory preset
under seven controller policies on the three synthetic traces, against the digests stored in
tests/data/engine_golden_logs.json (written by tools/golden_logs.py)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("golden_logs", ROOT / "tools" / "golden_logs.py")
golden_logs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden_logs)

STORED = json.loads(golden_logs.GOLDEN.read_text())


@pytest.fixture(scope="module")
def digests():
    return golden_logs.golden_digests()


def test_every_stored_run_still_exists(digests):
    assert sorted(digests) == sorted(STORED)


@pytest.mark.parametrize("run", sorted(STORED))
def test_command_log_and_cycles_are_unchanged(digests, run):
    cycles, digest = STORED[run]
    assert digests[run][0] == cycles, f"{run}: completion cycle {digests[run][0]}, stored {cycles}"
    assert digests[run][1] == digest, f"{run}: the command log or counters differ from the stored run"
