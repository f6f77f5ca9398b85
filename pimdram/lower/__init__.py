"""Lowering: kernels placed on PIM memory become per-channel command programs for the engine
(Engine.feed_program). Knows the designs' mappings; knows no file format."""
from .attacc import (AttentionProgram, attacc_head_counts, attention_layer, attention_program, fc_program,
                     macs_per_gemv, run_attention, run_fc)

__all__ = ["AttentionProgram", "attacc_head_counts", "attention_layer", "attention_program", "fc_program",
           "macs_per_gemv", "run_attention", "run_fc"]
