"""The kernel-trace format: round trip, determinism, and validation errors that name the line."""
import json

import pytest

from pimdram.errors import FileFormatError, TraceError, VersionTooNewError, VersionTooOldError
from pimdram.llm import Workload
from pimdram.mapping import generate_kernel_trace
from pimdram.trace.kernels import FORMAT_NAME, FORMAT_VERSION, KernelTrace, read_kernel_trace, write_kernel_trace


@pytest.fixture(scope="module")
def trace():
    return generate_kernel_trace("llama3-8b", "dgx-attacc", Workload.uniform(2, 64, 4), layers=2)


def lines_of(trace):
    return list(trace.lines())


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_round_trip(trace, tmp_path):
    p = tmp_path / "t.jsonl"
    write_kernel_trace(p, trace)
    back = read_kernel_trace(p)
    assert back == trace
    assert back.header["format"] == FORMAT_NAME and back.header["version"] == list(FORMAT_VERSION)
    assert len(p.read_text().splitlines()) == len(trace) + 1
    assert not list(tmp_path.glob(".*tmp*"))       # the temporary file was renamed


def test_same_inputs_same_bytes(tmp_path):
    a = generate_kernel_trace("mixtral-8x7b", "papi", Workload.uniform(3, 32, 4), layers=1)
    b = generate_kernel_trace("mixtral-8x7b", "papi", Workload.uniform(3, 32, 4), layers=1)
    write_kernel_trace(tmp_path / "a.jsonl", a)
    write_kernel_trace(tmp_path / "b.jsonl", b)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_kernel_lines_carry_what_lowering_needs(trace):
    score = next(k for k in trace.kernels if k["name"] == "attention_score")
    for key in ("id", "op", "form", "shape", "device", "operands", "deps", "kv_heads", "requests", "reuse"):
        assert key in score
    regions = trace.header["placement"]["regions"]
    for o in score["operands"]:
        assert {"name", "role", "access", "dtype", "bytes", "region"} <= set(o)
        r = regions[o["region"]]
        assert {"memory", "channels", "banks", "rows"} <= set(r)
    assert trace.header["system"]["memories"]["attacc_hbm"]["pim"] == "attacc-bank"


def test_deps_point_backwards_and_ids_count_up(trace):
    for i, k in enumerate(trace.kernels):
        assert k["id"] == i and all(d < i for d in k["deps"])


def corrupt(trace, tmp_path, index, change):
    lines = lines_of(trace)
    obj = json.loads(lines[index])
    change(obj)
    lines[index] = json.dumps(obj)
    return write_lines(tmp_path / "bad.jsonl", lines)


@pytest.mark.parametrize("index,change,match", [
    (3, lambda k: k.pop("op"), ":4: missing 'op'"),
    (5, lambda k: k.update(op="fft"), ":6: 'op' must be one of"),
    (4, lambda k: k.update(deps=[10]), ":5: dependency 10 must be the id of an earlier kernel"),
    (2, lambda k: k.update(device="tpu"), ":3: 'device' must be a device or link"),
    (2, lambda k: k.update(id=7), ":3: kernel ids must count up"),
    (3, lambda k: k["operands"][0].update(role="cache"), ":4: operand .*role must be one of"),
    (3, lambda k: k["operands"][0].update(region="nowhere"), ":4: operand .*region 'nowhere' is not in"),
    (3, lambda k: k.update(bytes_read=k["bytes_read"] + 1), ":4: bytes_read/bytes_written"),
    (3, lambda k: k.update(flops=-1), ":4: 'flops' must be a non-negative integer"),
    (3, lambda k: k["operands"][0].update(on_chip=True), ":4: operand .*on_chip must be true and the operand have no region"),
    (3, lambda k: (k["operands"][0].pop("region", None), k["operands"][0].update(on_chip="yes")),
     ":4: operand .*on_chip must be true"),
])
def test_bad_kernel_lines_name_the_line(trace, tmp_path, index, change, match):
    with pytest.raises(TraceError, match=match):
        read_kernel_trace(corrupt(trace, tmp_path, index, change))


def test_product_kernels_need_shapes(trace, tmp_path):
    i = next(k["id"] for k in trace.kernels if k["op"] == "gemm")
    with pytest.raises(TraceError, match=f":{i + 2}: a gemm kernel needs a positive shape.M"):
        read_kernel_trace(corrupt(trace, tmp_path, i + 1, lambda k: k["shape"].pop("M")))


def test_invalid_json_line(trace, tmp_path):
    lines = lines_of(trace)
    lines[2] = lines[2][:-5]
    with pytest.raises(TraceError, match=r"bad\.jsonl:3: invalid JSON"):
        read_kernel_trace(write_lines(tmp_path / "bad.jsonl", lines))


def test_truncated_file(trace, tmp_path):
    lines = lines_of(trace)[:-3]
    with pytest.raises(TraceError, match="announces .* kernels, found"):
        read_kernel_trace(write_lines(tmp_path / "bad.jsonl", lines))


def test_wrong_format_and_versions(trace, tmp_path):
    p = write_lines(tmp_path / "x.jsonl", ["0x40 READ 12"])
    with pytest.raises(FileFormatError, match="not a pimdram kernel trace"):
        read_kernel_trace(p)
    for version, error in (([2, 0], VersionTooNewError), ([0, 9], VersionTooOldError)):
        lines = lines_of(trace)
        header = json.loads(lines[0])
        header["version"] = version
        lines[0] = json.dumps(header)
        with pytest.raises(error):
            read_kernel_trace(write_lines(tmp_path / "v.jsonl", lines))
    # a newer minor version of the same major is read
    lines = lines_of(trace)
    header = json.loads(lines[0])
    header["version"] = [1, 7]
    lines[0] = json.dumps(header)
    assert len(read_kernel_trace(write_lines(tmp_path / "m.jsonl", lines))) == len(trace)


def test_header_memory_names_must_be_strings(trace):
    header = json.loads(json.dumps(trace.header))
    header["system"]["memories"]["attacc_hbm"]["pim"] = 5
    with pytest.raises(TraceError, match=":1: memory attacc_hbm: 'pim' must be a name"):
        write_kernel_trace("/nonexistent/never.jsonl", KernelTrace(header, trace.kernels))
