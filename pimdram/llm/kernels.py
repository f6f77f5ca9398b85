"""The kernels of one forward pass, layer by layer, with exact shapes, FLOPs and bytes per operand."""
import math
from dataclasses import dataclass, field

from ..trace.contexts import as_list
from .workload import dtype_bytes

ROLES = ("weight", "activation", "kv_cache")
ACCESSES = ("read", "write")
OPS = ("embedding", "norm", "gemm", "gemv", "elementwise", "attention_score", "softmax", "attention_context",
       "communication")

# FLOPs per element of the non-product kernels (one per arithmetic operation of the formula)
NORM_FLOPS = {"rmsnorm": 4, "layernorm": 7}   # rms: square, sum, scale, gamma; layer: + mean, subtract, beta
ROTARY_FLOPS = 3                              # x·cos + rotate(x)·sin
SOFTMAX_FLOPS = 5                             # max, subtract, exp, sum, divide
RESIDUAL_FLOPS = 1
ACTIVATION_FLOPS = {"plain": 1, "gated": 2}   # act(x); act(gate)·up
MERGE_FLOPS = 3                               # rescale two partial results by their softmax sums and add
COMBINE_FLOPS = 2                             # MoE: weight each expert's output and add

# kernel names grouped into the kinds `--only` accepts (besides any op or kernel name)
KINDS = {
    "attention": ("kv_cache_append", "attention_score", "softmax", "attention_context", "attention_merge"),
    "fc": ("qkv_projection", "output_projection", "ffn_gate", "ffn_up", "ffn_down", "router", "lm_head"),
    "ffn": ("ffn_norm", "ffn_gate", "ffn_up", "activation", "ffn_down", "router", "moe_combine", "ffn_residual"),
    "norm": ("attention_norm", "ffn_norm", "final_norm"),
    "communication": ("transfer", "all_reduce"),
}
FC_NAMES = KINDS["fc"]
#: The kinds of `kernel_kind`: a partition of all kernels (KINDS overlaps: ffn_gate is fc and ffn).
REPORT_KINDS = ("attention", "fc", "norm", "communication", "other")


def kernel_kind(name):
    """The one kind a kernel of this name counts under in reports and plots: attention, fc (every
    weight product), norm, communication (transfers, collectives), or other (embedding, rotary,
    activation, residual adds, MoE combine)."""
    for kind in ("attention", "communication", "fc", "norm"):
        if name in KINDS[kind]:
            return kind
    return "other"

ATTENTION_NAMES = KINDS["attention"]


@dataclass
class Operand:
    """One tensor a kernel reads or writes.

    `tensor` identifies the data inside one trace (dependencies and transfers follow it); `mode` says
    how a write combines with earlier writes of the same tensor: "write" replaces, "partial" writes a
    slice beside other writers (heads of one layer, requests of one batch), "update" rewrites part of
    it in place (rotary embedding), "append" adds tokens to a KV cache. `on_chip`: the tensor never
    leaves the device's on-chip memory (a tiled prefill attention's scores and probabilities): it
    has no region, moves no memory bytes and takes no capacity.
    """
    name: str
    role: str
    access: str
    dtype: str
    shape: tuple
    bytes: int
    tensor: str = ""
    mode: str = "write"
    region: str = None
    on_chip: bool = False

    def record(self):
        d = {"name": self.name, "role": self.role, "access": self.access, "dtype": self.dtype,
             "shape": list(self.shape), "bytes": self.bytes}
        if self.region is not None:
            d["region"] = self.region
        if self.on_chip:
            d["on_chip"] = True
        return d


@dataclass
class Kernel:
    name: str
    op: str
    layer: int                     # decoder layer, or None for embedding, final norm and LM head
    step: int
    phase: str
    shape: dict
    flops: int
    operands: list
    form: str = None               # "gemv" or "gemm" for matrix products (per instance)
    requests: tuple = ()
    expert: int = None
    sub_batch: int = None
    kv_heads: tuple = None         # [lo, hi) of the KV heads an attention kernel covers
    tokens: tuple = None           # [lo, hi) of the cached token positions it covers
    reuse: int = None              # attention: query rows per KV head and request (g · new tokens)
    contexts: tuple = None         # ragged attention: ((tokens, requests), ...) when its requests' token counts differ
    device: str = None
    deps: list = field(default_factory=list)
    prev_deps: list = field(default_factory=list)   # positions of kernels of the previous step it waits for
    id: int = None
    link: str = None
    collective: str = None         # communication: "all_reduce" or "all_gather" over shape["devices"]
    split: tuple = None            # (i, n): part i of n of a product split by output columns over devices (part 0 may be absent: the second device takes all)
    accumulated: bool = False      # a head group's output projection that a later group's adds to

    @property
    def bytes_read(self):
        """Bytes read from memory (on-chip operands excluded)."""
        return sum(o.bytes for o in self.operands if o.access == "read" and not o.on_chip)

    @property
    def bytes_written(self):
        return sum(o.bytes for o in self.operands if o.access == "write" and not o.on_chip)

    @property
    def intensity(self):
        total = self.bytes_read + self.bytes_written
        return self.flops / total if total else 0.0

    def bytes_of(self, role):
        return sum(o.bytes for o in self.operands if o.role == role)

    def record(self):
        """The kernel as one line of the kernel trace (see docs/kernel-trace-format.md)."""
        d = {"id": self.id, "name": self.name, "op": self.op, "layer": self.layer, "step": self.step,
             "phase": self.phase, "device": self.device}
        if self.link is not None:
            d["link"] = self.link
        if self.collective is not None:
            d["collective"] = self.collective
        if self.split is not None:
            d["split"] = list(self.split)
        if self.form is not None:
            d["form"] = self.form
        d["shape"] = dict(self.shape)
        for key in ("expert", "sub_batch"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.kv_heads is not None:
            d["kv_heads"] = list(self.kv_heads)
        if self.tokens is not None:
            d["tokens"] = list(self.tokens)
        if self.reuse is not None:
            d["reuse"] = self.reuse
        if self.contexts is not None:
            d["contexts"] = as_list(self.contexts)       # one list for a step's kernels (trace.contexts)
        if self.requests:
            d["requests"] = list(self.requests)
        d["flops"] = self.flops
        d["bytes_read"] = read = self.bytes_read
        d["bytes_written"] = written = self.bytes_written
        d["intensity"] = round(self.flops / (read + written) if read + written else 0.0, 6)
        d["operands"] = [o.record() for o in self.operands]
        d["deps"] = list(self.deps)
        if self.prev_deps:
            d["prev_deps"] = list(self.prev_deps)
        return d


@dataclass(frozen=True)
class AttentionPart:
    """A slice of one layer's attention (KV heads [lo, hi), cached tokens [lo, hi)) kept together."""
    kv_heads: tuple
    tokens: tuple
    tag: str = ""      # placement's name for the slice (e.g. the memory holding its KV cache)


def whole_attention(model, layer):
    return [AttentionPart((0, model.kv_heads), (0, 1 << 62))]


class StepBuilder:
    """Builds the kernels of one forward pass (one step) of a set of requests.

    `attention_parts(layer) -> [AttentionPart]` lets a placement policy split a layer's attention by
    KV head and token range (each part is then placed on its own); the default keeps it whole.
    `head_groups` > 1 builds a decode step's QKV projection, attention and output projection once per
    group of KV heads (the output projections accumulating into one output), so that a schedule
    can overlap one group's attention with the next group's projection. `ffn_split(M, K, N)`, when
    given, says how many output columns of each FFN product a second device computes: the product
    becomes two kernels (`split` 0 and 1 of 2) writing their columns of one output.
    """

    def __init__(self, model, workload, attention_parts=None, layers=None, head_groups=1, ffn_split=None):
        self.m = model
        self.w = workload
        self.attention_parts = attention_parts or (lambda layer: whole_attention(model, layer))
        self.layers = model.layers if layers is None else min(layers, model.layers)
        # KV-head ranges the attention block is built for, one after the other (AttAcc's head
        # groups: the next group's projections overlap this group's attention)
        n = max(1, min(int(head_groups), model.kv_heads))
        self.head_groups = [(i * model.kv_heads // n, (i + 1) * model.kv_heads // n) for i in range(n)]
        # ffn_split(M, K, N) -> output columns of an FFN product to give a second device (0: none)
        self.ffn_split = ffn_split
        self._memo_for, self._memo = None, {}           # _step_memo: kept for one step's groups

    # --- operand helpers -------------------------------------------------------------------
    def _operand(self, role, dtype, name, access, shape, tensor, mode="write", on_chip=False):
        return Operand(name, role, access, dtype, tuple(shape), dtype_bytes(dtype, math.prod(shape)), tensor, mode,
                       on_chip=on_chip)

    def _act(self, name, access, shape, tensor, mode="write", on_chip=False):
        return self._operand("activation", self.w.activation_dtype, name, access, shape, tensor, mode, on_chip)

    def _weight(self, name, shape, tensor):
        return self._operand("weight", self.w.weight_dtype, name, "read", shape, tensor)

    def _kv(self, name, access, shape, tensor, mode="write"):
        return self._operand("kv_cache", self.w.kv_cache_dtype, name, access, shape, tensor, mode)

    def _fc(self, name, layer, x, y, M, K, N, bias, weight_tensor, expert=None, **common):
        ops = [self._act("x", "read", (M, K), x), self._weight("w", (K, N), weight_tensor)]
        if bias:
            ops.append(self._weight("b", (N,), weight_tensor + ".bias"))
        ops.append(self._act("y", "write", (M, N), y))
        return Kernel(name, "gemv" if M == 1 else "gemm", layer, shape={"M": M, "N": N, "K": K},
                      flops=2 * M * N * K, operands=ops, form="gemv" if M == 1 else "gemm", expert=expert, **common)

    def _elementwise(self, name, op, layer, elements, flops_per, reads, writes, **common):
        return Kernel(name, op, layer, shape={"elements": elements}, flops=flops_per * elements,
                      operands=reads + writes, **common)

    # --- one step ----------------------------------------------------------------------------
    def build(self, step, groups, sub_batch=None):
        """Kernels of one step for `groups` (StepGroup) of requests; tensors are named per sub-batch."""
        m = self.m
        sb = "" if sub_batch is None else f"b{sub_batch}."
        pre = f"s{step.index}.{sb}"
        requests = tuple(sorted(r for g in groups for r in g.requests))
        T = sum(len(g.requests) * g.new_tokens for g in groups)
        h = m.hidden
        common = dict(step=step.index, phase=step.phase, sub_batch=sub_batch, requests=requests)
        out = []

        # embedding lookup (+ learned positions)
        ops = [self._act("tokens", "read", (T,), f"{sb}tokens"),
               self._weight("embedding_table", (T, h), "embedding")]
        if m.position_embedding == "learned":
            ops.append(self._weight("position_table", (T, h), "position_embedding"))
        ops.append(self._act("x", "write", (T, h), pre + "L-1.out"))
        out.append(Kernel("embedding", "embedding", None, shape={"elements": T * h},
                          flops=T * h if m.position_embedding == "learned" else 0, operands=ops, **common))

        x = pre + "L-1.out"
        for layer in range(self.layers):
            x = self._layer(out, layer, x, groups, T, pre, sb, common)

        # final norm and LM head: the prefill needs logits only for each request's last token
        out.append(self._norm("final_norm", None, x, pre + "final.x_norm", T, "final_norm", common))
        rows = len(requests) if step.phase == "prefill" else T
        head_x = pre + "final.x_norm"
        out.append(self._fc("lm_head", None, head_x, f"{sb}tokens", rows, h, m.vocab, False,
                            "embedding" if m.tied_embeddings else "lm_head", **common))
        return out

    def _norm(self, name, layer, x, y, T, weight_tensor, common):
        m = self.m
        reads = [self._act("x", "read", (T, m.hidden), x),
                 self._weight("gamma", (m.norm_params(),), weight_tensor)]
        writes = [self._act("y", "write", (T, m.hidden), y)]
        return self._elementwise(name, "norm", layer, T * m.hidden, NORM_FLOPS[m.norm], reads, writes, **common)

    def _layer(self, out, layer, x, groups, T, pre, sb, common):
        m = self.m
        h = m.hidden
        L = f"{pre}L{layer}."
        W = f"L{layer}."
        attention, router, ffn = m.layer_weight_shapes()

        out.append(self._norm("attention_norm", layer, x, L + "x_norm", T, W + "attention_norm", common))
        # head groups pipeline a decode step (attention on a PIM device beside the xPU's
        # projections); a prefill's attention runs on the xPU with its projections, built whole
        head_groups = self.head_groups if common["phase"] == "decode" else [(0, m.kv_heads)]
        many = len(head_groups) > 1
        for gi, heads in enumerate(head_groups):
            self._attention_block(out, layer, L, W, T, groups, sb, heads, f".g{gi}" if many else "", gi == 0,
                                  attention, common)
        out.append(self._elementwise(
            "attention_residual", "elementwise", layer, T * h, RESIDUAL_FLOPS,
            [self._act("x", "read", (T, h), x), self._act("attn_out", "read", (T, h), L + "attn_out")],
            [self._act("y", "write", (T, h), L + "mid")], **common))
        out.append(self._norm("ffn_norm", layer, L + "mid", L + "mid_norm", T, W + "ffn_norm", common))

        if m.is_moe:
            _, K, N, _ = router[0]
            out.append(self._fc("router", layer, L + "mid_norm", L + "routing", T, K, N, False, W + "router", **common))
            loads = expert_loads(T, m.experts, m.experts_per_token)
            for e, tokens in enumerate(loads):
                if tokens:
                    self._ffn(out, layer, L, W, L + "mid_norm", f"{L}expert{e}.out", tokens, ffn, e, common)
            active = [e for e, t in enumerate(loads) if t]
            out.append(self._elementwise(
                "moe_combine", "elementwise", layer, m.experts_per_token * T * h, COMBINE_FLOPS,
                [self._act("routing", "read", (T, m.experts_per_token), L + "routing")]
                + [self._act(f"expert{e}", "read", (loads[e], h), f"{L}expert{e}.out") for e in active],
                [self._act("y", "write", (T, h), L + "ffn_out")], **common))
        else:
            self._ffn(out, layer, L, W, L + "mid_norm", L + "ffn_out", T, ffn, None, common)
        out.append(self._elementwise(
            "ffn_residual", "elementwise", layer, T * h, RESIDUAL_FLOPS,
            [self._act("x", "read", (T, h), L + "mid"), self._act("ffn_out", "read", (T, h), L + "ffn_out")],
            [self._act("y", "write", (T, h), L + "out")], **common))
        return L + "out"

    def _attention_block(self, out, layer, L, W, T, groups, sb, heads, gs, first, attention, common):
        """QKV projection, rotary embedding, attention and output projection of the KV heads
        `heads` [lo, hi) (all of them unless the layer is built in head groups; `gs` suffixes the
        group's tensors); the output projection of a later group adds to the first's output."""
        m = self.m
        d, g = m.head_dim, m.group_size
        hlo, hhi = heads
        kvh_all = hhi - hlo
        whole = kvh_all == m.kv_heads
        a, kvw = (m.attention_width, m.kv_width) if whole else (kvh_all * g * d, kvh_all * d)   # query and KV widths
        _, K, N, bias = attention[0]
        qkv = L + "qkv" + gs
        out.append(self._fc("qkv_projection", layer, L + "x_norm", qkv, T, K, N if whole else a + 2 * kvw, bias,
                            W + "qkv_projection" + gs, **common))
        if m.position_embedding == "rotary":
            el = T * (a + kvw)
            out.append(self._elementwise(
                "rotary_embedding", "elementwise", layer, el, ROTARY_FLOPS,
                [self._act("qk", "read", (T, a + kvw), qkv, mode="partial")],
                [self._act("qk", "write", (T, a + kvw), qkv, mode="update")], **common))

        parts = [p for p in self.attention_parts(layer)
                 if p.kv_heads[0] < hhi and p.kv_heads[1] > hlo]
        token_splits = len({p.tokens for p in parts}) > 1
        ctx = L + "context" + gs
        ctx_parts = {}
        all_parts = self.attention_parts(layer)
        memo = self._step_memo(groups)
        if "sets" not in memo:
            memo["sets"] = _attention_sets(groups)
        for n, members in memo["sets"]:
            for part in parts:
                i = all_parts.index(part)
                plo, phi = max(part.kv_heads[0], hlo), min(part.kv_heads[1], hhi)
                kvh = phi - plo
                if kvh <= 0:
                    continue
                requests, lengths, contexts, stored = self._part_rows(groups, n, members, part.tokens)
                if not requests:
                    continue
                tlo = max(part.tokens[0], 0)
                thi = tlo + max(lengths)
                R = len(requests)
                ragged = len(lengths) > 1
                tag = dict(kv_heads=(plo, phi), tokens=(tlo, thi), reuse=g * n)
                gcommon = dict(common, requests=requests)
                kv_tensor = f"{sb}L{layer}.kv.p{i}{gs}"
                if stored:  # this part stores some of the new tokens
                    if len({new for _, new in stored}) == 1:
                        Rn, nt = sum(k for k, _ in stored), stored[0][1]
                        shape = (Rn, nt, 2, kvh, d)
                    else:    # requests store different numbers of tokens here: laid end to end
                        shape = (1, sum(k * new for k, new in stored), 2, kvh, d)
                    out.append(self._elementwise(
                        "kv_cache_append", "elementwise", layer, 2 * math.prod(shape[:2]) * kvh * d, 0,
                        [self._act("kv", "read", shape, qkv, mode="partial")],
                        [self._kv("kv_cache", "write", shape, kv_tensor, mode="append")],
                        **tag, **gcommon))
                Ntok = max(lengths)
                total_tokens = sum(t * k for t, k in lengths.items())   # summed over the requests
                M = g * n
                inst = R * kvh
                # a ragged kernel (requests with different contexts, one launch as a paged
                # attention kernel runs them) lays its requests' tokens end to end in its shapes
                per = (1, total_tokens) if ragged else (R, Ntok)
                extra = dict(contexts=contexts) if ragged else {}
                sc = f"{L}scores.r{requests[0]}.p{i}{gs}"
                # a prefill's attention runs in tiles (FlashAttention): its scores and
                # probabilities stay on chip, one tile at a time
                tiled = common["phase"] == "prefill"
                sshape = (per[0], kvh * g, n, per[1])
                out.append(Kernel(
                    "attention_score", "attention_score", layer,
                    shape={"M": M, "N": Ntok, "K": d, "instances": inst}, flops=2 * M * total_tokens * d * kvh,
                    form="gemv" if M == 1 else "gemm",
                    operands=[self._act("q", "read", (R, kvh * g, n, d), qkv),
                              self._kv("k_cache", "read", (per[0], kvh, per[1], d), kv_tensor),
                              self._act("scores", "write", sshape, sc, on_chip=tiled)],
                    **extra, **tag, **gcommon))
                out.append(self._elementwise(
                    "softmax", "softmax", layer, kvh * M * total_tokens, SOFTMAX_FLOPS,
                    [self._act("scores", "read", sshape, sc, on_chip=tiled)],
                    [self._act("probs", "write", sshape, sc + ".probs", on_chip=tiled)], **extra, **tag, **gcommon))
                pc = f"{ctx}.p{i}" if token_splits else ctx
                ctx_parts[i] = kvh
                out.append(Kernel(
                    "attention_context", "attention_context", layer,
                    shape={"M": M, "N": d, "K": Ntok, "instances": inst}, flops=2 * M * d * total_tokens * kvh,
                    form="gemv" if M == 1 else "gemm",
                    operands=[self._act("probs", "read", sshape, sc + ".probs", on_chip=tiled),
                              self._kv("v_cache", "read", (per[0], kvh, per[1], d), kv_tensor),
                              self._act("context", "write", (R, n, kvh * g * d), pc, mode="partial")],
                    **extra, **tag, **gcommon))
        if token_splits:
            # partial results of token slices are rescaled by their softmax sums and added
            n_parts = len({p.tokens for p in parts})
            reads = [self._act("context_part", "read", (T, ctx_parts[i] * g * d), f"{ctx}.p{i}")
                     for i in sorted(ctx_parts)]
            out.append(self._elementwise("attention_merge", "elementwise", layer, T * a, MERGE_FLOPS * (n_parts - 1),
                                         reads, [self._act("context", "write", (T, a), ctx)], **common))
        _, K, N, bias = attention[1]
        proj = self._fc("output_projection", layer, ctx, L + "attn_out", T, K if whole else a, N,
                        bias and first, W + "output_projection" + gs, **common)
        if not first:            # adds this group's share to the output of the groups before
            proj.operands[-1].mode = "update"
        proj.accumulated = heads[1] < m.kv_heads
        out.append(proj)

    def _step_memo(self, groups):
        """What every layer and head group of one step shares (its attention sets and part rows),
        kept for the step's `groups`."""
        if self._memo_for is not groups:
            self._memo_for, self._memo = groups, {}
        return self._memo

    def _part_rows(self, groups, n, members, tokens):
        """For the attention set of `n` new tokens (`members`: (context, requests) pairs) and a
        KV-cache part's token range `tokens`: the requests with tokens in the part (sorted), the
        requests of each length of theirs there, those as sorted (tokens, requests) pairs, and
        (requests, new tokens) of the groups that store tokens in the part. Kept for the step
        (_step_memo): its kernels then share one contexts tuple."""
        memo = self._step_memo(groups)
        key = (n, tokens)
        hit = memo.get(key)
        if hit is not None:
            return hit
        rows = []       # per group of requests: (requests, cached + new tokens in the part, new tokens it stores)
        for c, reqs in members:
            tlo, thi = max(tokens[0], 0), min(tokens[1], c + n)
            if thi > tlo:
                rows.append((reqs, thi - tlo, max(0, thi - max(tlo, c))))
        requests = tuple(sorted(r for reqs, _, _ in rows for r in reqs))
        lengths = {}
        for reqs, t, _ in rows:
            lengths[t] = lengths.get(t, 0) + len(reqs)
        stored = [(len(reqs), new) for reqs, _, new in rows if new > 0]
        hit = memo[key] = requests, lengths, tuple(sorted(lengths.items())), stored
        return hit

    def _ffn(self, out, layer, L, W, x, y, M, ffn, expert, common):
        m = self.m
        i = m.intermediate
        sfx = "" if expert is None else f".e{expert}"
        shapes = {name: (K, N, b) for name, K, N, b in ffn}
        if m.ffn == "gated":
            for name in ("ffn_gate", "ffn_up"):
                K, N, b = shapes[name]
                out.extend(self._ffn_fc(name, layer, x, f"{L}{name}{sfx}", M, K, N, b, f"{W}{name}{sfx}",
                                        expert, common))
            reads = [self._act("gate", "read", (M, i), f"{L}ffn_gate{sfx}"),
                     self._act("up", "read", (M, i), f"{L}ffn_up{sfx}")]
        else:
            K, N, b = shapes["ffn_up"]
            out.extend(self._ffn_fc("ffn_up", layer, x, f"{L}ffn_up{sfx}", M, K, N, b, f"{W}ffn_up{sfx}",
                                    expert, common))
            reads = [self._act("up", "read", (M, i), f"{L}ffn_up{sfx}")]
        k = self._elementwise("activation", "elementwise", layer, M * i, ACTIVATION_FLOPS[m.ffn], reads,
                              [self._act("y", "write", (M, i), f"{L}act{sfx}")], **common)
        k.expert = expert
        out.append(k)
        K, N, b = shapes["ffn_down"]
        out.extend(self._ffn_fc("ffn_down", layer, f"{L}act{sfx}", y, M, K, N, b, f"{W}ffn_down{sfx}", expert,
                                common))

    def _ffn_fc(self, name, layer, x, y, M, K, N, bias, weight, expert, common):
        """An FFN product, or its two column splits when ffn_split gives the second device some."""
        second = min(N, self.ffn_split(M, K, N)) if self.ffn_split else 0
        if second <= 0:
            return [self._fc(name, layer, x, y, M, K, N, bias, weight, expert=expert, **common)]
        out = []
        for part, cols in enumerate((N - second, second)):
            if cols == 0:                            # the second device takes every column
                continue
            k = self._fc(name, layer, x, y, M, K, cols, bias, f"{weight}.s{part}", expert=expert, **common)
            if cols < N:
                k.operands[-1].mode = "partial"      # its columns of y, beside the other part's
            k.split = (part, 2)
            out.append(k)
        return out


def _attention_sets(groups):
    """The step's groups by new tokens: (n, [(context, requests), ...]) in order. The requests of
    one set share an attention kernel (per KV-cache part) whatever their contexts: a paged
    attention kernel (vLLM's, FlashAttention's variable-length one, AttAcc's per-request heads
    on the channels) serves a batch of mixed lengths in one launch."""
    sets = {}
    for grp in groups:
        sets.setdefault(grp.new_tokens, []).append((grp.context, grp.requests))
    return sorted(sets.items())


def expert_loads(tokens, experts, top_k):
    """Tokens each expert receives under balanced routing: tokens·top_k assignments spread evenly.

    Routing is data-dependent; the balanced assumption gives the fewest weight bytes for a batch
    and is stated in docs/workloads.md. Experts 0..r-1 take the remainder, so results are stable.
    """
    assignments = tokens * top_k
    base, extra = divmod(assignments, experts)
    return [base + (1 if e < extra else 0) for e in range(experts)]
