"""`pimdram validate`: the claim registry, how ratios are formed, a claim whose figure is worked out
by hand, and every claim in its --quick form through the CLI (docs/validate.md)."""
import json
import math

import pytest
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.validate import CLAIMS, Claim, Point, ValidateError, aggregate, point_ratio, run_claims, select_claims
from pimdram.validate.runner import Runner


def test_ratios_are_formed_as_the_papers_state_them():
    # throughput: the system's tokens/s over the baseline's
    assert point_ratio("throughput", 300.0, 100.0) == 3.0
    assert point_ratio("decode_throughput", 50.0, 200.0) == 0.25
    # energy efficiency (tokens per joule): the baseline's J/token over the system's
    assert point_ratio("energy_efficiency", 0.5, 2.0) == 4.0
    assert aggregate("max", [1.2, 1.7, 1.5]) == 1.7
    assert aggregate("geomean", [2.0, 8.0]) == pytest.approx(4.0)
    assert aggregate("single", [1.25]) == 1.25
    with pytest.raises(ValidateError):
        aggregate("single", [1.0, 2.0])


def test_the_registry_has_every_headline_of_the_issue():
    figures = {c.name: (c.paper, c.reference) for c in CLAIMS}
    assert figures == {
        "attacc-throughput": ("AttAcc", 2.81), "attacc-energy": ("AttAcc", 2.67),
        "neupims-naive": ("NeuPIMs", 1.6), "neupims-npu-only": ("NeuPIMs", 2.4), "neupims-gpu-only": ("NeuPIMs", 3.0),
        "ianus-a100": ("IANUS", 6.2), "papi-a100-attacc": ("PAPI", 1.8), "papi-attacc-only": ("PAPI", 11.1),
        "hybe-phi3": ("Hybe", 2.1), "hybe-llama3-energy": ("Hybe", 3.9)}
    for c in CLAIMS:
        assert c.citation and c.sources and c.claim
        # --quick runs a subset of the same claim's points, nothing else
        assert set(c.quick_points()) <= set(c.points)
        assert set(Runner.runs_of(c, quick=True)) <= set(Runner.runs_of(c, quick=False))
    papi = {c.name: c for c in CLAIMS}["papi-a100-attacc"]
    assert {p.model for p in papi.points} == {"llama-65b", "opt-66b", "gpt3-175b"}
    assert {(p.batch, p.speculation) for p in papi.points} == {(b, s) for b in (4, 16, 64) for s in (1, 2, 4)}


def test_names_select_claims_or_papers_and_unknown_names_list_the_known_ones():
    assert [c.name for c in select_claims(["papi"])] == ["papi-a100-attacc", "papi-attacc-only"]
    assert [c.name for c in select_claims(["hybe-phi3", "AttAcc"])] == ["attacc-throughput", "attacc-energy",
                                                                        "hybe-phi3"]
    assert len(select_claims(None)) == len(select_claims(["all"])) == len(CLAIMS)
    with pytest.raises(ValidateError, match="unknown claim 'gpt5'; known: all, attacc-throughput, "):
        select_claims(["gpt5"])
    result = CliRunner().invoke(cli, ["validate", "gpt5"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown claim 'gpt5'; known: all, attacc-throughput")
    assert len(result.output.strip().splitlines()) == 1


def test_an_assumptions_alternative_changes_every_point():
    papi = select_claims(["papi-a100-attacc"])[0]
    varied = papi.vary({"prompt": 512, "output": 512})
    assert {(p.prompt, p.output, p.context) for p in varied.points} == {(512, 512, 767)}
    assert varied.reference == papi.reference and len(varied.points) == len(papi.points)
    assert papi.vary({"baseline": "dgx-a100"}).baseline == "dgx-a100"
    with pytest.raises(ValidateError, match="unknown field"):
        papi.vary({"contxt": 5})


def test_mean_decode_context_is_the_generations_mean():
    # a 2048 + 2048 generation's decode steps cache 2048 .. 4094 tokens: mean 3071 (docs/validation.md)
    assert Point("gpt3-175b", 1, 2048, 2048).context == 3071
    assert Point("gpt2", 1, 16, 4, phase="generate").context is None


def _overhead_bound_a100(tmp_path, name, microseconds):
    """One A100 whose every kernel takes the fixed cost: GPT-2's one-layer decode kernels are far
    below 1 ms on the roofline (the LM head, the largest, reads 77 MB: 45 us)."""
    path = tmp_path / f"{name}.yaml"
    # a mapping merges into the base's by kind, so every kind the base names is set here
    kinds = ", ".join(f"{k}: {microseconds}" for k in ("default", "norm", "elementwise", "softmax", "embedding"))
    # no static power (the board's idle watts): energy is the kernels' bytes and FLOPs alone
    path.write_text(f"base: a100\nname: {name}\ndevices:\n  gpu:\n    kernel_overhead_us: {{{kinds}}}\n"
                    f"    static_power_w: 0\n")
    return str(path)


def test_a_claim_worked_out_by_hand(tmp_path):
    # GPT-2, one layer, batch 1, decode: 16 kernels one after another on one GPU (embedding, 13 of
    # the layer, final norm, LM head). At 1 ms each the step takes 16 ms: 62.5 tokens/s; at 2 ms
    # 31.25. Energy counts bytes and FLOPs only, so both spend the same per token.
    fast, slow = _overhead_bound_a100(tmp_path, "fast", 1000), _overhead_bound_a100(tmp_path, "slow", 2000)
    common = dict(paper="hand", citation="by hand", system=fast, baseline=slow, aggregate="single",
                  points=(Point("gpt2", 1, 16, 4, layers=1),), quick=(0,), sources=(("all", "this test"),))
    speed = Claim(name="hand-speed", claim="twice as fast", reference=2.5, metric="decode_throughput", **common)
    energy = Claim(name="hand-energy", claim="same energy", reference=1.0, metric="energy_efficiency", **common)
    runs = []
    rows = run_claims([speed, energy], progress=lambda done, total: runs.append((done, total)))
    assert runs == [(1, 2), (2, 2)]           # the two claims share both runs
    row, erow = rows
    (pt,) = row["points"]
    assert pt["system_value"] == pytest.approx(62.5) and pt["baseline_value"] == pytest.approx(31.25)
    assert pt["unit"] == "tokens/s" and pt["context"] == 17
    assert row["pimdram"] == pytest.approx(2.0)
    assert row["ratio"] == pytest.approx(2.0 / 2.5)
    assert erow["pimdram"] == pytest.approx(1.0) and erow["points"][0]["unit"] == "J/token"
    assert run_claims([speed]) == [row]        # deterministic
    # an alternative that sets a system figure on both systems: 1 kW of static power per GPU adds
    # 1000 W x 16 ms = 16 J to the fast system's token and 32 J to the slow one's
    dynamic = erow["points"][0]["system_value"]
    static = energy.vary({"overrides": (("devices.gpu.static_power_w", 1000),)})
    (srow,) = run_claims([static])
    assert srow["points"][0]["system_value"] == pytest.approx(dynamic + 16.0)
    assert srow["points"][0]["baseline_value"] == pytest.approx(dynamic + 32.0)


def test_every_claim_in_quick_form_through_the_cli():
    result = CliRunner().invoke(cli, ["validate", "all", "--quick", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == [c.name for c in CLAIMS]
    by_name = {c.name: c for c in CLAIMS}
    for r in rows:
        c = by_name[r["name"]]
        assert r["paper"] == c.paper and r["claim"] == c.claim and r["reference"] == c.reference
        assert r["unit"] == "x" and r["quick"] is True
        assert isinstance(r["pimdram"], float) and math.isfinite(r["pimdram"]) and r["pimdram"] > 0
        assert r["ratio"] == pytest.approx(r["pimdram"] / r["reference"])
        ratios = []
        for p, q in zip(r["points"], c.quick_points()):
            assert (p["model"], p["batch"], p["prompt"], p["output"], p["speculation"]) == \
                (q.model, q.batch, q.prompt, q.output, q.speculation)
            assert p["unit"] == ("J/token" if c.metric == "energy_efficiency" else "tokens/s")
            assert p["ratio"] == pytest.approx(point_ratio(c.metric, p["system_value"], p["baseline_value"]))
            ratios.append(p["ratio"])
        assert r["pimdram"] == pytest.approx(aggregate(c.aggregate, ratios))
    # the same runs in the table form
    table = CliRunner().invoke(cli, ["validate", "attacc", "--quick"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["claim", "paper", "pimdram", "ratio"]
    assert lines[2].split()[:2] == ["attacc-throughput", "2.81x"]
    attacc = next(r for r in rows if r["name"] == "attacc-throughput")
    assert lines[2].split()[2] == f"{attacc['pimdram']:.2f}x"


def test_list_names_every_claim():
    result = CliRunner().invoke(cli, ["validate", "--list"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == [c.name for c in CLAIMS]


def test_a_system_override_alternative_is_named_by_its_key():
    from pimdram.validate.runner import _variant_text
    assert _variant_text({"batch": 128}) == "batch=128"
    assert _variant_text({"overrides": (("devices.gpu.static_power_w", 103),), "output": 256}) == \
        "devices.gpu.static_power_w=103, output=256"
