"""`pimdram model list`, `system list/show` and `config list`: every preset with one line on it."""
import json

import yaml
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.config import list_configs, preset_description


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_model_list_shows_every_preset_with_its_size():
    r = run("model", "list")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["name", "params", "layers", "hidden", "heads/KV", "description"]
    assert [line.split()[0] for line in lines[1:]] == list_configs("models")
    llama = next(line for line in lines if line.startswith("llama3-8b "))
    # 8,030,261,248 parameters (test_llm_models), 32 layers of 4096, 32 heads over 8 KV heads
    assert llama.split()[1:5] == ["8.03B", "32", "4096", "32/8"]
    assert llama.endswith("Llama-3-8B (GQA, 8 KV heads)")
    rows = json.loads(run("model", "list", "--json").output)
    mixtral = next(m for m in rows if m["name"] == "mixtral-8x7b")
    assert (mixtral["experts"], mixtral["kv_heads"]) == (8, 8)


def test_system_list_shows_policy_and_description():
    r = run("system", "list")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert [line.split()[0] for line in lines[1:]] == list_configs("systems")
    attacc = next(line for line in lines if line.startswith("dgx-attacc "))
    assert attacc.split()[1] == "attacc"
    assert attacc.endswith(preset_description("systems", "dgx-attacc"))
    assert preset_description("systems", "dgx-attacc").startswith("8 x A100 for FC layers")
    rows = json.loads(run("system", "list", "--json").output)
    assert next(s for s in rows if s["name"] == "a100")["devices"] == "1x gpu (gpu)"


def test_system_show_resolves_with_overrides():
    shown = yaml.safe_load(run("system", "show", "dgx-attacc").output)
    assert shown["name"] == "dgx-attacc" and shown["mapping"]["policy"] == "attacc"
    r = run("system", "show", "dgx-attacc", "--set", "options.power_limit=unlimited", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["name"] == "dgx-attacc"
    r = run("system", "show", "dgx-atacc")
    assert r.exit_code != 0 and "unknown systems preset 'dgx-atacc'" in r.output and "Traceback" not in r.output


def test_config_list_gives_one_line_on_each_design():
    r = run("config", "list")
    assert r.exit_code == 0, r.output
    line = next(line for line in r.output.splitlines() if line.split()[:1] == ["attacc-bank"])
    assert line.split(None, 1)[1] == ("AttAcc bank-level PIM on HBM3 5.2 Gbps (all-bank ACT/MAC/PRE per channel, "
                                      "buffer-die softmax)")
    listing = json.loads(run("config", "list", "--json").output)
    assert [p["name"] for p in listing["pim"]] == list_configs("pim")
    assert next(p for p in listing["dram"] if p["name"] == "ddr4_3200")["description"].startswith("DDR4-3200AA")


def test_description_falls_back_to_the_first_comment_line(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.yaml").write_text("#\n# A tiny model for tests\n# more words\nname: tiny\n")
    monkeypatch.setenv("PIMDRAM_CONFIG_PATH", str(tmp_path))
    assert preset_description("models", "tiny") == "A tiny model for tests"
