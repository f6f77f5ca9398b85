"""The documented rules by which a derived config is merged onto its base (docs/pim-configs.md,
"The file, key by key"; docs/systems.md, "Deriving one system from another"), one test each."""
import yaml
import pytest

from pimdram.config.memory import load_memory
from pimdram.config.system import load_system

from test_config_pim import MINIMAL as DESIGN      # a design with one MAC command and its unit


def design(tmp_path, extra=""):
    p = tmp_path / "d.yaml"
    p.write_text(DESIGN + extra)
    return load_memory(p)


def test_constraints_are_appended_to_the_base_rows(tmp_path):
    base, d = load_memory("hbm3_5.2gbps"), design(tmp_path)
    assert len(d.constraints) == len(base.constraints) + 1
    mac = d.command_index("MACAB")
    assert [r.latency for r in d.constraints if r.from_cmd == mac] == [base.timing["nCCD_L"]]


def test_mappings_merge_key_by_key(tmp_path):
    # one field of one base command changes; the command's other fields and the other commands stay
    base, d = load_memory("hbm3_5.2gbps"), design(tmp_path)
    p = tmp_path / "e.yaml"
    p.write_text(DESIGN.replace("commands:\n", "commands:\n  ACT: {bus_cycles: 3}\n"))
    e = load_memory(p)
    act, base_act = e.commands[e.command_index("ACT")], base.commands[base.command_index("ACT")]
    assert act.bus_cycles == 3 and act.kind == base_act.kind and act.scope == base_act.scope
    assert e.command_names[:len(base.command_names)] == base.command_names
    assert d.timing == base.timing


def test_a_timing_in_ns_replaces_its_cycle_twin(tmp_path):
    base = load_memory("hbm3_5.2gbps")
    d = design(tmp_path, "timing:\n  tRCD: 20\n")       # ns; the base gives nRCD = 19 cycles
    assert base.timing["nRCD"] == 19 and base.tck_ns == 0.769
    assert d.timing["nRCD"] == 27                      # ceil(20 / 0.769 = 26.01)


def test_other_lists_replace_the_base_list(tmp_path):
    base = load_memory("hbm3_5.2gbps")
    mapping = [list(f) for f in reversed(base.address_mapping)]
    d = design(tmp_path, "address_mapping: " + yaml.safe_dump(mapping, default_flow_style=True))
    assert [list(f) for f in d.address_mapping] == mapping


def test_system_base_merge_replaces_values_and_null_deletes(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"base": "dgx-attacc", "name": "s",
                                 "devices": {"gpu": {"cores": None, "peak_tflops": 100}},
                                 "links": {"gpu_attacc": {"topology": "shared"}}}))
    s, base = load_system(str(p)), load_system("dgx-attacc")
    assert s.devices["gpu"].cores is None and base.devices["gpu"].cores == 108
    assert s.devices["gpu"].peak_tflops == 100 and s.devices["gpu"].bandwidth_gbs == base.devices["gpu"].bandwidth_gbs
    assert s.links["gpu_attacc"].topology == "shared" and s.links["gpu_attacc"].bandwidth_gbs == 300
