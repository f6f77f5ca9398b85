"""Device timings of every shipped memory preset, row by row: for each constraint row a command is
not ready one cycle before the row allows it and is ready at it (tests/timing_cases.py), and
activate windows (tFAW) slide. A new preset in configs/dram or configs/compare is covered
without a line here; hand-written cases per standard live in test_timing_<standard>.py."""
import pytest

from pimdram.config import list_configs
from timing_cases import check_every_row, check_window_row, preset, row_params, window_params

PRESETS = list_configs("dram") + list_configs("compare")


@pytest.mark.parametrize("name,row", row_params(PRESETS))
def test_constraint_row(name, row):
    check_every_row(name, row)


@pytest.mark.parametrize("name,row", window_params(PRESETS))
def test_activate_window_slides(name, row):
    assert check_window_row(preset(name), row, n_extra=12) > 0
