"""Metrics of a served stream (pimdram.serve.metrics), worked by hand."""
import math

import numpy as np

from pimdram.serve.metrics import meets_slos, request_times, stream_metrics

# four requests: arrival, first token, finish, prompt, output tokens, preemptions
REQUESTS = {
    "arrival_s": [0.0, 1.0, 2.0, 3.0],
    "first_token_s": [0.5, 2.0, 2.2, 4.0],
    "finish_s": [1.5, 4.0, 2.2, 5.0],
    "prompt_tokens": [10, 10, 10, 10],
    "output_tokens": [11, 5, 1, 3],
    "preemptions": [0, 1, 0, 0],
}
# steps cover [0, 4.5) with 3.5 s busy; 0.5 s idle between them
STEPS = {
    "start_s": [0.0, 1.0, 3.0],
    "seconds": [1.0, 2.0, 0.5],
    "phase": np.array(["prefill", "decode", "decode"]),
    "kv_blocks": [3, 7, 2],
    "energy_j": [1.0, 2.0, 0.5],
}


def test_ttft_and_tpot_of_each_request():
    ttft, tpot = request_times(REQUESTS["arrival_s"], REQUESTS["first_token_s"], REQUESTS["finish_s"],
                               REQUESTS["output_tokens"])
    assert ttft.tolist() == [0.5, 1.0, 2.2 - 2.0, 1.0]
    # (finish - first) / (output - 1): 1.0 / 10, 2.0 / 4, none (one token), 1.0 / 2
    assert tpot[[0, 1, 3]].tolist() == [0.1, 0.5, 0.5] and math.isnan(tpot[2])


def test_stream_figures():
    m = stream_metrics(REQUESTS, STEPS, slo_ttft_s=0.6, slo_tpot_s=0.2, idle_power_w=2.0, block_bytes=100)
    assert m["requests_completed"] == 4 and m["output_tokens"] == 20 and m["preemptions"] == 1
    assert m["simulated_seconds"] == 5.0 and m["busy_seconds"] == 3.5
    assert m["throughput_tokens_per_s"] == 20 / 5.0
    # nearest rank over TTFTs [0.2, 0.5, 1.0, 1.0]: p50 is the 2nd, p90 and p99 the 4th
    assert (m["ttft_p50_s"], m["ttft_p90_s"], m["ttft_p99_s"]) == (0.5, 1.0, 1.0)
    # TPOTs of the three multi-token requests [0.1, 0.5, 0.5]
    assert (m["tpot_p50_s"], m["tpot_p99_s"]) == (0.5, 0.5) and math.isclose(m["tpot_mean_s"], 1.1 / 3)
    # SLOs: TTFT <= 0.6 keeps requests 0 and 2; TPOT <= 0.2 keeps 0 and 2 (no TPOT): 11 + 1 tokens
    assert m["slo_met_requests"] == 2 and m["goodput_tokens_per_s"] == 12 / 5.0
    # energy: 3.5 J of steps + 2 W x 1.5 s without a step
    assert (m["step_energy_j"], m["idle_energy_j"], m["energy_j"]) == (3.5, 3.0, 6.5)
    assert m["energy_per_token_j"] == 6.5 / 20
    assert (m["kv_peak_blocks"], m["kv_peak_bytes"]) == (7, 700.0)
    assert (m["steps"], m["prefill_steps"], m["decode_steps"]) == (3, 1, 2)


def test_goodput_needs_an_slo_and_one_slo_constrains_alone():
    m = stream_metrics(REQUESTS, STEPS)
    assert math.isnan(m["goodput_tokens_per_s"]) and math.isnan(m["slo_ttft_s"])
    ttft, tpot = request_times(REQUESTS["arrival_s"], REQUESTS["first_token_s"], REQUESTS["finish_s"],
                               REQUESTS["output_tokens"])
    assert meets_slos(ttft, tpot, slo_tpot_s=0.3).tolist() == [True, False, True, False]
    assert meets_slos(ttft, tpot, slo_ttft_s=1.0).tolist() == [True, True, True, True]
