"""Decoder-only transformer descriptions: presets, Hugging Face config.json import, parameter and KV-cache sizes."""
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import Section, find_config, load_yaml
from .._atomic import note_input
from ..errors import ConfigError

FFN_KINDS = ("plain", "gated")
#: the largest value of each size: beyond them a typo (a model of a million layers would run the
#: generator out of memory before its capacity check could say it does not fit)
LIMITS = {"hidden": 1 << 20, "layers": 1 << 14, "heads": 1 << 14, "kv_heads": 1 << 14, "head_dim": 1 << 14,
          "intermediate": 1 << 22, "vocab": 1 << 24, "experts": 1 << 12, "experts_per_token": 1 << 12}
MAX_POSITIONS = 1 << 30
MAX_CONFIG_JSON_BYTES = 16 << 20
NORMS = ("layernorm", "rmsnorm")
POSITION_EMBEDDINGS = ("learned", "rotary")


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of a decoder-only transformer, in Hugging Face config.json vocabulary.

    `attention_width` (heads · head_dim) may differ from `hidden` (GPT-3 13B: 40 · 128 = 5120
    against a hidden size of 5140); the projections map between the two.
    """

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    ffn: str                     # "plain" (up, act, down) or "gated" (gate, up, act(gate)*up, down)
    activation: str              # gelu, relu, silu, ...
    vocab: int
    norm: str = "rmsnorm"
    position_embedding: str = "rotary"
    max_positions: int = 0       # context limit; rows of the position table when it is learned
    tied_embeddings: bool = False
    qkv_bias: bool = False
    output_bias: bool = False
    ffn_bias: bool = False
    experts: int = 1             # MoE: experts per layer (1 = dense)
    experts_per_token: int = 1   # MoE: top-k
    published_params: float = 0.0
    source: str = ""

    def __post_init__(self):
        where = self.name or "model"
        for key in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab",
                    "experts", "experts_per_token"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
            if value > LIMITS[key]:
                raise ConfigError(f"{where}: {key} must be at most {LIMITS[key]}, got {value!r}")
        if isinstance(self.max_positions, bool) or not isinstance(self.max_positions, int) \
                or not 0 <= self.max_positions <= MAX_POSITIONS:
            raise ConfigError(f"{where}: max_positions must be a whole number in 0..{MAX_POSITIONS}, "
                              f"got {self.max_positions!r}")
        if self.heads % self.kv_heads:
            raise ConfigError(f"{where}: heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.experts_per_token > self.experts:
            raise ConfigError(f"{where}: experts_per_token ({self.experts_per_token}) exceeds experts ({self.experts})")
        if self.ffn not in FFN_KINDS:
            raise ConfigError(f"{where}: ffn must be one of {', '.join(FFN_KINDS)}, got {self.ffn!r}")
        if self.norm not in NORMS:
            raise ConfigError(f"{where}: norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.position_embedding not in POSITION_EMBEDDINGS:
            raise ConfigError(f"{where}: position_embedding must be one of {', '.join(POSITION_EMBEDDINGS)}, "
                              f"got {self.position_embedding!r}")
        if self.position_embedding == "learned" and self.max_positions <= 0:
            raise ConfigError(f"{where}: a learned position embedding needs max_position_embeddings > 0")

    # --- derived sizes --------------------------------------------------------------------
    @property
    def group_size(self):
        """Query heads per KV head (g): 1 under MHA, heads under MQA."""
        return self.heads // self.kv_heads

    @property
    def attention_width(self):
        return self.heads * self.head_dim

    @property
    def kv_width(self):
        return self.kv_heads * self.head_dim

    @property
    def is_moe(self):
        return self.experts > 1

    @property
    def ffn_matrices(self):
        return 3 if self.ffn == "gated" else 2

    def norm_params(self):
        """Weights of one norm (gamma, plus beta for LayerNorm)."""
        return self.hidden * (2 if self.norm == "layernorm" else 1)

    def layer_weight_shapes(self):
        """(name, K, N, bias) of every matrix of one decoder layer, per expert for the FFN.

        K is the input and N the output width of y = x·W.
        """
        h, a, kv, i = self.hidden, self.attention_width, self.kv_width, self.intermediate
        attention = [("qkv_projection", h, a + 2 * kv, self.qkv_bias), ("output_projection", a, h, self.output_bias)]
        if self.ffn == "gated":
            ffn = [("ffn_gate", h, i, self.ffn_bias), ("ffn_up", h, i, self.ffn_bias), ("ffn_down", i, h, self.ffn_bias)]
        else:
            ffn = [("ffn_up", h, i, self.ffn_bias), ("ffn_down", i, h, self.ffn_bias)]
        router = [("router", h, self.experts, False)] if self.is_moe else []
        return attention, router, ffn

    def _layer_params(self, experts_counted):
        attention, router, ffn = self.layer_weight_shapes()
        total = 2 * self.norm_params()
        total += sum(k * n + (n if b else 0) for _, k, n, b in attention + router)
        total += experts_counted * sum(k * n + (n if b else 0) for _, k, n, b in ffn)
        return total

    def _embedding_params(self):
        total = self.vocab * self.hidden
        if self.position_embedding == "learned":
            total += self.max_positions * self.hidden
        if not self.tied_embeddings:
            total += self.vocab * self.hidden          # separate LM head
        return total + self.norm_params()              # final norm

    def param_count(self):
        """All weights: embeddings, every layer with every expert, final norm, LM head unless tied."""
        return self._embedding_params() + self.layers * self._layer_params(self.experts)

    def active_param_count(self):
        """Weights one token touches (MoE: only its top-k experts)."""
        return self._embedding_params() + self.layers * self._layer_params(self.experts_per_token)

    def kv_cache_bytes_per_token(self, kv_bytes=2, layers=None):
        """KV cache per token, all layers: 2 (K and V) · kv_heads · head_dim · bytes · layers."""
        n = self.layers if layers is None else layers
        return 2 * self.kv_heads * self.head_dim * kv_bytes * n

    def summary(self, kv_bytes=2):
        """Plain-data description (for `pimdram model show --json` and the trace header)."""
        out = {
            "name": self.name,
            "params": self.param_count(),
            "active_params": self.active_param_count(),
            "published_params": self.published_params or None,
            "layers": self.layers,
            "hidden": self.hidden,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "group_size": self.group_size,
            "intermediate": self.intermediate,
            "ffn": self.ffn,
            "activation": self.activation,
            "vocab": self.vocab,
            "norm": self.norm,
            "position_embedding": self.position_embedding,
            "max_positions": self.max_positions,
            "tied_embeddings": self.tied_embeddings,
            "experts": self.experts,
            "experts_per_token": self.experts_per_token,
            "kv_cache_bytes_per_token": self.kv_cache_bytes_per_token(kv_bytes),
            "kv_cache_bytes_per_token_per_layer": self.kv_cache_bytes_per_token(kv_bytes, layers=1),
            "source": self.source,
        }
        return out

    def to_dict(self):
        return asdict(self)


# --- presets (YAML in configs/models/) --------------------------------------------------------

def _model_from_section(sec, name):
    """Build a ModelSpec from a preset mapping (Hugging Face key names plus a few of pimdram's)."""
    hidden = sec.number("hidden_size", positive=True, integer=True)
    heads = sec.number("num_attention_heads", positive=True, integer=True)
    kv_heads = sec.number("num_key_value_heads", default=heads, positive=True, integer=True)
    head_dim = sec.number("head_dim", default=None, positive=True, integer=True)
    if head_dim is None:
        if hidden % heads:
            raise sec.error("head_dim", f"missing, and hidden_size {hidden} is not a multiple of {heads} heads")
        head_dim = hidden // heads
    bias = sec.get("bias", False, types=bool)
    spec = ModelSpec(
        name=sec.get("name", name, types=str),
        hidden=hidden,
        layers=sec.number("num_hidden_layers", positive=True, integer=True),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=sec.number("intermediate_size", positive=True, integer=True),
        ffn=sec.choice("ffn", FFN_KINDS),
        activation=sec.require("hidden_act", types=str),
        vocab=sec.number("vocab_size", positive=True, integer=True),
        norm=sec.choice("norm", NORMS, default="rmsnorm"),
        position_embedding=sec.choice("position_embedding", POSITION_EMBEDDINGS, default="rotary"),
        max_positions=sec.number("max_position_embeddings", default=0, integer=True),
        tied_embeddings=sec.get("tie_word_embeddings", False, types=bool),
        qkv_bias=sec.get("qkv_bias", bias, types=bool),
        output_bias=sec.get("output_bias", bias, types=bool),
        ffn_bias=sec.get("ffn_bias", bias, types=bool),
        experts=sec.number("num_local_experts", default=1, positive=True, integer=True),
        experts_per_token=sec.number("num_experts_per_tok", default=1, positive=True, integer=True),
        published_params=float(sec.number("published_params", default=0.0)),
        source=sec.get("source", "", types=str),
    )
    sec.done()
    return spec


def load_model(name_or_path):
    """A ModelSpec from a preset name (configs/models/NAME.yaml), a YAML file, or a HF config.json."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".json"):
        return load_hf_config(text)
    path = find_config("models", text)
    data = load_yaml(path)
    try:
        return _model_from_section(Section(data, source=str(path)), Path(path).stem)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


# --- Hugging Face config.json import -----------------------------------------------------------

# model_type -> FFN kind, norm, position embedding, LM head tied by default
_GATED_ROTARY = {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "phi3", "gemma", "gemma2", "qwen3"}
_SUPPORTED = sorted(_GATED_ROTARY | {"gpt2", "opt", "gpt_neox"})


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def load_hf_config(path):
    """Import a local Hugging Face config.json (no network) into a ModelSpec.

    Covers num_key_value_heads (GQA/MQA), an explicit head_dim, gated and plain FFNs, MoE
    (num_local_experts / num_experts, num_experts_per_tok) and tie_word_embeddings.
    """
    path = Path(path)
    note_input(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_JSON_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_JSON_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_JSON_BYTES >> 20} MiB; expected a Hugging Face "
                          "config.json")
    try:
        cfg = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; expected a Hugging Face config.json") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    model_type = cfg.get("model_type")
    if model_type not in _SUPPORTED:
        raise ConfigError(f"{path}: model_type {model_type!r} is not supported; supported: {', '.join(_SUPPORTED)}")
    name = cfg.get("_name_or_path") or path.parent.name or path.stem
    name = str(name).rstrip("/").split("/")[-1] or path.stem

    def need(*keys, default=None, optional=False):
        for k in keys:
            if cfg.get(k) is not None:
                v = cfg[k]
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise ConfigError(f"{path}: {k} must be a positive integer, got {v!r}")
                return v
        if optional:
            return default
        raise ConfigError(f"{path}: missing field {' or '.join(keys)} (model_type {model_type})")

    def flag(key, default):
        # bool("false") is True: a flag written as text (or a number) would silently turn on
        v = cfg.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise ConfigError(f"{path}: {key} must be true or false, got {v!r}")
        return v

    common = dict(name=name, source=f"Hugging Face config.json ({path})")
    if model_type == "gpt2":
        hidden = need("n_embd", "hidden_size")
        spec = ModelSpec(
            hidden=hidden, layers=need("n_layer", "num_hidden_layers"), heads=need("n_head", "num_attention_heads"),
            kv_heads=need("n_head", "num_attention_heads"), head_dim=hidden // need("n_head", "num_attention_heads"),
            intermediate=need("n_inner", optional=True, default=4 * hidden), ffn="plain",
            activation=str(cfg.get("activation_function", "gelu_new")), vocab=need("vocab_size"),
            norm="layernorm", position_embedding="learned", max_positions=need("n_positions", "max_position_embeddings"),
            tied_embeddings=flag("tie_word_embeddings", True), qkv_bias=True, output_bias=True, ffn_bias=True,
            **common)
    elif model_type == "opt":
        hidden = need("hidden_size")
        if cfg.get("word_embed_proj_dim") not in (None, hidden):
            raise ConfigError(f"{path}: word_embed_proj_dim != hidden_size (projected embeddings) is not supported")
        heads = need("num_attention_heads")
        bias = flag("enable_bias", True)
        spec = ModelSpec(
            hidden=hidden, layers=need("num_hidden_layers"), heads=heads, kv_heads=heads, head_dim=hidden // heads,
            intermediate=need("ffn_dim"), ffn="plain", activation=str(cfg.get("activation_function", "relu")),
            vocab=need("vocab_size"), norm="layernorm", position_embedding="learned",
            # OPT's learned position table has 2 extra rows (an offset kept from fairseq)
            max_positions=need("max_position_embeddings") + 2,
            tied_embeddings=flag("tie_word_embeddings", True), qkv_bias=bias, output_bias=bias, ffn_bias=bias,
            **common)
    elif model_type == "gpt_neox":
        hidden = need("hidden_size")
        heads = need("num_attention_heads")
        spec = ModelSpec(
            hidden=hidden, layers=need("num_hidden_layers"), heads=heads, kv_heads=heads, head_dim=hidden // heads,
            intermediate=need("intermediate_size"), ffn="plain", activation=str(cfg.get("hidden_act", "gelu")),
            vocab=need("vocab_size"), norm="layernorm", position_embedding="rotary",
            tied_embeddings=flag("tie_word_embeddings", False), qkv_bias=True, output_bias=True, ffn_bias=True,
            **common)
    else:
        hidden = need("hidden_size")
        heads = need("num_attention_heads")
        head_dim = need("head_dim", optional=True)
        if head_dim is None:
            if hidden % heads:
                raise ConfigError(f"{path}: missing field head_dim, and hidden_size {hidden} is not a multiple of "
                                  f"num_attention_heads {heads}")
            head_dim = hidden // heads
        experts = need("num_local_experts", "num_experts", optional=True, default=1)
        intermediate = need("intermediate_size")
        if experts > 1 and cfg.get("moe_intermediate_size"):
            intermediate = need("moe_intermediate_size")
        attention_bias = flag("attention_bias", model_type in ("qwen2", "qwen2_moe"))
        spec = ModelSpec(
            hidden=hidden, layers=need("num_hidden_layers"), heads=heads,
            kv_heads=need("num_key_value_heads", optional=True, default=heads), head_dim=head_dim,
            intermediate=intermediate, ffn="gated",
            activation=str(cfg.get("hidden_act") or cfg.get("hidden_activation") or "silu"),
            vocab=need("vocab_size"), norm="rmsnorm", position_embedding="rotary",
            tied_embeddings=flag("tie_word_embeddings", model_type.startswith("gemma")),
            qkv_bias=attention_bias, output_bias=attention_bias and model_type not in ("qwen2", "qwen2_moe"),
            ffn_bias=flag("mlp_bias", False),
            experts=experts, experts_per_token=need("num_experts_per_tok", optional=True, default=1) if experts > 1 else 1,
            **common)
    return spec
