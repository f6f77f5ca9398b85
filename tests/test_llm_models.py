"""Model presets and Hugging Face config.json import: architecture fields, parameter counts, KV-cache sizes."""
from pathlib import Path

import pytest

from pimdram.config import list_configs
from pimdram.errors import ConfigError
from pimdram.llm import load_model

DATA = Path(__file__).parent / "data" / "llm"

REQUIRED_PRESETS = ["gpt3-175b", "gpt3-13b", "gpt3-6.7b", "opt-66b", "opt-30b", "llama-65b", "llama2-7b",
                    "llama2-70b", "llama3-8b", "llama3-70b", "mixtral-8x7b", "phi3-mini", "gpt2", "gpt2-medium",
                    "gpt2-large", "gpt2-xl"]


def test_every_model_of_the_reference_table_has_a_preset():
    assert set(REQUIRED_PRESETS) <= set(list_configs("models"))


@pytest.mark.parametrize("name", REQUIRED_PRESETS)
def test_parameter_count_within_one_percent_of_published(name):
    m = load_model(name)
    assert m.published_params > 0, "each preset records the published count it is checked against"
    assert abs(m.param_count() / m.published_params - 1) < 0.01


def test_llama3_8b_worked_example():
    # models.md: embeddings + untied head 2·128256·4096; per layer q, o 4096², k, v 4096·1024, 3 FFN 4096·14336
    m = load_model("llama3-8b")
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    assert m.param_count() == 2 * 128256 * 4096 + 32 * per_layer + 4096
    assert m.group_size == 4


def test_mixtral_active_parameters():
    m = load_model("mixtral-8x7b")
    assert abs(m.active_param_count() / 12.9e9 - 1) < 0.01
    assert abs(m.param_count() / 46.7e9 - 1) < 0.01


def test_gpt3_13b_attention_width_differs_from_hidden():
    m = load_model("gpt3-13b")
    assert (m.hidden, m.attention_width) == (5140, 5120)
    attention, _, _ = m.layer_weight_shapes()
    assert attention[0][1:3] == (5140, 3 * 5120)
    assert attention[1][1:3] == (5120, 5140)


@pytest.mark.parametrize("name,kv_bytes_per_token", [
    ("llama3-8b", 2 * 8 * 128 * 2 * 32),        # GQA: kv_heads, not heads
    ("llama2-70b", 2 * 8 * 128 * 2 * 80),
    ("gpt3-175b", 2 * 96 * 128 * 2 * 96),
    ("phi3-mini", 2 * 32 * 96 * 2 * 32),         # explicit head_dim 96
])
def test_kv_cache_bytes_per_token(name, kv_bytes_per_token):
    assert load_model(name).kv_cache_bytes_per_token(2) == kv_bytes_per_token


def test_kv_cache_int8_halves_fp16():
    m = load_model("llama3-70b")
    assert m.kv_cache_bytes_per_token(1) * 2 == m.kv_cache_bytes_per_token(2)


def test_hf_config_matches_preset():
    imported = load_model(str(DATA / "llama3-8b.config.json"))
    preset = load_model("llama3-8b")
    for key in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "ffn", "vocab",
                "tied_embeddings", "experts"):
        assert getattr(imported, key) == getattr(preset, key), key
    assert imported.param_count() == preset.param_count()


def test_hf_mixtral_moe():
    m = load_model(str(DATA / "mixtral.config.json"))
    assert (m.experts, m.experts_per_token) == (8, 2)
    assert m.param_count() == load_model("mixtral-8x7b").param_count()


def test_hf_gpt2_plain_ffn_tied_learned_positions():
    m = load_model(str(DATA / "gpt2.config.json"))
    assert (m.ffn, m.intermediate, m.tied_embeddings, m.position_embedding) == ("plain", 3072, True, "learned")
    assert m.param_count() == 124439808          # the released GPT-2 small checkpoint
    assert m.param_count() == load_model("gpt2").param_count()


def test_hf_mqa_with_explicit_head_dim():
    m = load_model(str(DATA / "gemma-mqa.config.json"))
    assert (m.kv_heads, m.head_dim, m.group_size) == (1, 256, 16)
    assert m.attention_width == 4096 != m.hidden      # not hidden / heads = 192
    assert m.tied_embeddings       # gemma ties by default
    assert m.kv_cache_bytes_per_token(2, layers=1) == 2 * 1 * 256 * 2


def test_hf_missing_field_is_one_clear_error():
    with pytest.raises(ConfigError, match="missing field num_attention_heads"):
        load_model(str(DATA / "missing-heads.config.json"))


def test_hf_unsupported_model_type(tmp_path):
    p = tmp_path / "config.json"
    p.write_text('{"model_type": "t5"}')
    with pytest.raises(ConfigError, match="model_type 't5' is not supported"):
        load_model(str(p))


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown models preset 'gpt5'.*llama3-8b"):
        load_model("gpt5")


def test_preset_errors_name_the_key(tmp_path):
    p = tmp_path / "bad.yaml"
    base = (DATA / "tiny-mha.yaml").read_text()
    p.write_text(base.replace("num_attention_heads: 4", "num_attention_heads: 0"))
    with pytest.raises(ConfigError, match="num_attention_heads: must be positive"):
        load_model(str(p))
    p.write_text(base + "rope_scaling: 2\n")
    with pytest.raises(ConfigError, match="rope_scaling: unknown key"):
        load_model(str(p))
    p.write_text(base.replace("num_key_value_heads: 4", "num_key_value_heads: 3"))
    with pytest.raises(ConfigError, match="multiple of kv_heads"):
        load_model(str(p))


def test_tiny_moe_parameter_count_by_hand():
    m = load_model(str(DATA / "tiny-gqa-moe.yaml"))
    per_layer = 2 * 64 + 64 * (64 + 2 * 16) + 64 * 64 + 64 * 4 + 4 * 3 * 64 * 128
    assert m.param_count() == 2 * 1000 * 64 + 64 + 2 * per_layer
    active_layer = per_layer - 2 * 3 * 64 * 128
    assert m.active_param_count() == 2 * 1000 * 64 + 64 + 2 * active_layer


@pytest.mark.parametrize("text, message", [
    ("{\n  \"model_type\": \"llama\",\n  oops\n}", r":3: invalid JSON: "),
    ("[1, 2]", "expected a JSON object"),
    ('{"model_type": "llama", "hidden_size": NaN}', "invalid JSON: NaN is not a number JSON allows"),
    ('{"model_type": "llama", "hidden_size": -4096, "num_attention_heads": 32}', "hidden_size must be a positive integer"),
    ('{"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 1000000, '
     '"intermediate_size": 14336, "vocab_size": 128256}', "layers must be at most 16384, got 1000000"),
    ("\xff", "not UTF-8 text"),
])
def test_hf_import_errors_are_one_clear_line(tmp_path, text, message):
    path = tmp_path / "config.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match=message):
        load_model(str(path))
