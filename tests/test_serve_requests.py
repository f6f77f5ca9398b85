"""Request files (docs/request-file-format.md): reading, writing, generating."""
import math

import numpy as np
import pytest

from pimdram.errors import WorkloadError
from pimdram.serve.requests import (ServedRequest, generate_requests, parse_lengths, read_histogram, read_requests,
                                    write_requests)


def test_csv_with_version_extra_columns_and_the_old_arrival_name(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("\ufeff# pimdram-requests 1.0\n# a comment\nid,arrival_s,prompt_tokens,output_tokens,priority\n"
                 "7,0.5,10,2,high\n\n3,0,4,1,low\n")
    r = read_requests(p)
    assert r == [ServedRequest(7, 0.5, 10, 2), ServedRequest(3, 0.0, 4, 1)]
    assert r[0].extra == {"priority": "high"}
    q = tmp_path / "old.csv"
    q.write_text("arrival,prompt_tokens,output_tokens\n1.25,8,3\n2,9,4\n")
    assert read_requests(q) == [ServedRequest(0, 1.25, 8, 3), ServedRequest(1, 2.0, 9, 4)]


def test_jsonl_and_round_trips(tmp_path):
    reqs = [ServedRequest(0, 0.0, 5, 6, {"priority": 2}), ServedRequest(1, 0.1 + 0.2, 7, 8)]
    for name in ("a.csv", "a.jsonl"):
        write_requests(tmp_path / name, reqs)
        back = read_requests(tmp_path / name)
        assert back == reqs and back[1].arrival_s == 0.1 + 0.2       # exact: repr round-trips
    assert read_requests(tmp_path / "a.jsonl")[0].extra == {"priority": 2}
    assert read_requests(tmp_path / "a.csv")[0].extra == {"priority": "2"}
    assert (tmp_path / "a.jsonl").read_text().splitlines()[0] == '{"format": "pimdram-requests", "version": [1, 0]}'
    with pytest.raises(Exception, match="exists"):
        write_requests(tmp_path / "a.csv", reqs)


@pytest.mark.parametrize("text, message", [
    ("id,arrival_s,prompt_tokens,output_tokens\n0,0,10,2\n1,0,zero,2\n", r"r\.csv:3: prompt_tokens 'zero' is not"),
    ("arrival_s,prompt\n0,10\n", r"r\.csv:1: missing column\(s\) prompt_tokens, output_tokens"),
    ("arrival_s,prompt_tokens,output_tokens\n0,10\n", r"r\.csv:2: 2 fields, the header has 3"),
    ("arrival_s,prompt_tokens,output_tokens\nnan,10,2\n", r"r\.csv:2: arrival_s must be a finite"),
    ("arrival_s,prompt_tokens,output_tokens\n-1,10,2\n", r"r\.csv:2: arrival_s must be"),
    ("arrival_s,prompt_tokens,output_tokens\n0,0,2\n", r"r\.csv:2: prompt_tokens must be between 1 and"),
    ("id,arrival_s,prompt_tokens,output_tokens\n1,0,1,2\n1,0,1,2\n", r"r\.csv:3: duplicate request id 1"),
    ("# pimdram-requests 2.0\narrival_s,prompt_tokens,output_tokens\n", r"r\.csv:1: pimdram-requests version 2\.0"),
    ('{"format": "pimdram-requests", "version": [1, 1]}\n', r"r\.csv:1: pimdram-requests version 1\.1 is not"),
    ('{"arrival_s": 0, "prompt_tokens": 1.5, "output_tokens": 2}\n', r"r\.csv:1: prompt_tokens must be a whole"),
    ('{"arrival_s": 0, "prompt_tokens": 1, "output_tokens": 2}\n[1]\n', r"r\.csv:2: expected a JSON object"),
    ("arrival_s,prompt_tokens,output_tokens\n", r"r\.csv: no requests"),
    ("x" * 70000, r"r\.csv:1: line longer than 65536"),
])
def test_bad_files_name_file_and_line(tmp_path, text, message):
    p = tmp_path / "r.csv"
    p.write_text(text)
    with pytest.raises(WorkloadError, match=message):
        read_requests(p)


def test_generated_arrivals_and_lengths_by_hand():
    fixed = generate_requests(4, rate=2, arrivals="fixed", lengths=(100, 10))
    assert [r.arrival_s for r in fixed] == [0.0, 0.5, 1.0, 1.5]
    assert {(r.prompt_tokens, r.output_tokens) for r in fixed} == {(100, 10)}
    assert [r.arrival_s for r in generate_requests(3, arrivals="poisson", lengths=(1, 1))] == [0.0] * 3  # no rate
    # Poisson: the gaps are numpy's exponential draws with the seed (first request at 0)
    rng = np.random.default_rng(5)
    gaps = rng.exponential(0.25, 3)
    got = [r.arrival_s for r in generate_requests(3, rate=4, lengths=(1, 1), seed=5)]
    assert got == pytest.approx([0.0, gaps[1], gaps[1] + gaps[2]])


def test_named_lengths_have_the_published_means():
    reqs = generate_requests(200_000, lengths="sharegpt", seed=1)
    prompt = np.mean([r.prompt_tokens for r in reqs])
    output = np.mean([r.output_tokens for r in reqs])
    # log-normal with means 161.31 / 337.99 and CV 1; rounding to whole tokens moves the mean < 0.1
    assert prompt == pytest.approx(161.31, rel=0.01) and output == pytest.approx(337.99, rel=0.01)
    cv = np.std([r.output_tokens for r in reqs]) / output
    assert cv == pytest.approx(1.0, abs=0.05)
    assert generate_requests(5, lengths="alpaca", seed=3) == generate_requests(5, lengths="alpaca", seed=3)
    assert generate_requests(5, lengths="alpaca", seed=3) != generate_requests(5, lengths="alpaca", seed=4)


def test_histogram_lengths(tmp_path):
    h = tmp_path / "h.csv"
    h.write_text("prompt_tokens,output_tokens,count\n100,10,3\n200,20,1\n300,30,0\n")
    assert read_histogram(h) == [(100, 10, 3.0), (200, 20, 1.0), (300, 30, 0.0)]
    reqs = generate_requests(40_000, lengths=str(h), seed=2)
    shares = {p: sum(r.prompt_tokens == p for r in reqs) / len(reqs) for p in (100, 200, 300)}
    assert shares[100] == pytest.approx(0.75, abs=0.01) and shares[300] == 0
    assert all(r.output_tokens * 10 == r.prompt_tokens for r in reqs)       # joint: rows drawn whole
    h.write_text("prompt_tokens,output_tokens,count\n100,10,0\n")
    with pytest.raises(WorkloadError, match="no weight"):
        read_histogram(h)


def test_generator_and_length_errors():
    with pytest.raises(WorkloadError, match="count"):
        generate_requests(0)
    with pytest.raises(WorkloadError, match="rate"):
        generate_requests(1, rate=-1.0)
    with pytest.raises(WorkloadError, match="arrivals"):
        generate_requests(1, arrivals="uniform")
    assert parse_lengths("2048:16") == (2048, 16) and parse_lengths("alpaca") == "alpaca"
    with pytest.raises(WorkloadError, match="between 1 and"):
        generate_requests(1, lengths=(0, 5))
    with pytest.raises(WorkloadError, match="expected sharegpt, alpaca"):
        parse_lengths("nope")
    assert math.isinf(generate_requests(1)[0].arrival_s) is False


def test_cli_writes_the_generators_file(tmp_path):
    from click.testing import CliRunner

    from pimdram.cli import cli

    out = tmp_path / "r.csv"
    r = CliRunner().invoke(cli, ["requests", "-n", "4", "--arrivals", "fixed", "--rate", "2", "--lengths", "100:10",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "4 requests over 1.500 s, prompt 100.0 and output 10.0 tokens" in r.output
    assert out.read_text() == ("# pimdram-requests 1.0\nid,arrival_s,prompt_tokens,output_tokens\n"
                               "0,0.0,100,10\n1,0.5,100,10\n2,1.0,100,10\n3,1.5,100,10\n")
    again = CliRunner().invoke(cli, ["requests", "-n", "4", "-o", str(out)])
    assert again.exit_code != 0 and "exists" in again.output and "0,0.0,100,10" in out.read_text()
    bad = CliRunner().invoke(cli, ["requests", "-n", "4", "--rate", "0", "-o", str(tmp_path / "x.csv")])
    assert bad.exit_code != 0 and "--rate must be positive" in bad.output and not (tmp_path / "x.csv").exists()
