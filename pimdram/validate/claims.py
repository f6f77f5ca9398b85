"""The seed papers' headline claims as data: what each paper reports, and the experiment that
reproduces it in pimdram (models, systems, workload points, metric, how the ratio is formed).

Every number below cites its source: the paper (abstract, section or figure), its public
simulator's configuration, or shared/reference/pim_designs.md, which gathers both. A number no
source gives is an `Assumption`, stated in the claim with the values that `pimdram validate
--sensitivity` also runs (docs/validate.md shows both). Nothing here was chosen to make a ratio
come out near the paper's.

A claim's `points` are the paper's setups (model, batch, prompt, output, speculation); pimdram's
figure aggregates the per-point ratios as the claim's wording does: `max` for "up to", the
geometric mean for "on average" or an unqualified headline over a grid. `quick` names the points
(a subset of `points`, nothing else changes) that `--quick` runs.
"""
from dataclasses import dataclass, fields, replace

from ..errors import PimdramError

#: what a claim compares and the unit of its ratio
METRICS = {
    # tokens per second of the system over the baseline's
    "throughput": "tokens/s (whole generation: prefill and decode)",
    # tokens per second in decode only (one decode step at the generation's mean context)
    "decode_throughput": "decode tokens/s",
    # tokens per joule: the baseline's energy per token over the system's
    "energy_efficiency": "tokens/J",
    # tokens per second of a stream of `stream` requests queued at once, stage-pipelined where the
    # system runs prefill and decode on different devices (pimdram.serve.pipeline)
    "stream_throughput": "tokens/s (a stream of whole generations)",
}
AGGREGATES = ("single", "max", "geomean")


class ValidateError(PimdramError):
    """A claim is malformed, a claim name unknown, or a claim's experiment cannot run."""

PHASES = ("mean-decode", "generate")


@dataclass(frozen=True)
class Point:
    """One workload a claim runs on both systems.

    phase "mean-decode": one decode step at the generation's mean context, prompt + output/2 - 1
    cached tokens (the decode steps of a prompt + output generation cache prompt .. prompt +
    output - 2 tokens); it equals the whole generation's decode tokens/s where attention is linear
    in the context (docs/validation.md). "generate": the whole generation, prefill and decode.
    """
    model: str
    batch: int
    prompt: int
    output: int
    phase: str = "mean-decode"
    speculation: int = 1
    layers: int = None          # keep only the first N decoder layers (None: all)
    stream: int = 1             # metric stream_throughput: requests queued at time 0

    @property
    def context(self):
        return self.prompt + self.output // 2 - 1 if self.phase == "mean-decode" else None

    def describe(self):
        text = f"{self.model} b{self.batch} {self.prompt}+{self.output}"
        if self.speculation != 1:
            text += f" spec {self.speculation}"
        if self.phase == "mean-decode":
            text += f" (decode at {self.context})"
        if self.layers is not None:
            text += f" {self.layers} layers"
        if self.stream != 1:
            text += f" x{self.stream} requests"
        return text


@dataclass(frozen=True)
class Assumption:
    """A parameter no source gives: what was taken, why, and the alternatives that show the
    claim's sensitivity to it. Each alternative is a mapping of Claim or Point field names to
    values (a Point field applies to every point)."""
    what: str
    alternatives: tuple = ()


@dataclass(frozen=True)
class Claim:
    name: str                  # the CLI's name for it
    paper: str                 # short name of the paper
    citation: str              # paper, venue, where the figure is stated
    claim: str                 # what the paper reports, in words
    reference: float           # the paper's figure (a ratio, "x")
    system: str                # pimdram system preset of the paper's design
    baseline: str              # preset of the system it is compared against
    metric: str                # a key of METRICS
    aggregate: str             # how per-point ratios combine: a value of AGGREGATES
    points: tuple              # Point, the paper's setups
    quick: tuple               # indices into points that --quick runs
    sources: tuple             # (parameter, source) pairs for the experiment's numbers
    assumptions: tuple = ()    # Assumption
    bound: str = "equal"       # "at least" where the paper says "over"
    overcommit: bool = False   # the paper's setup exceeds a preset's memory: run as a capacity study
    overrides: tuple = ()      # (dotted system key, value) pairs set on both systems (`--set`): an assumption's alternative

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValidateError(f"claim {self.name}: unknown metric {self.metric!r}")
        if self.aggregate not in AGGREGATES:
            raise ValidateError(f"claim {self.name}: unknown aggregate {self.aggregate!r}")
        if not self.points or (self.aggregate == "single" and len(self.points) != 1):
            raise ValidateError(f"claim {self.name}: 'single' needs exactly one point")
        if not self.quick or any(not 0 <= i < len(self.points) for i in self.quick):
            raise ValidateError(f"claim {self.name}: quick must index its points")
        for p in self.points:
            if p.phase not in PHASES:
                raise ValidateError(f"claim {self.name}: unknown phase {p.phase!r}")
            if self.metric == "stream_throughput" and p.phase != "generate":
                raise ValidateError(f"claim {self.name}: a stream runs whole generations (phase 'generate')")
            if isinstance(p.stream, bool) or not isinstance(p.stream, int) or p.stream < 1:
                raise ValidateError(f"claim {self.name}: stream must be a positive number of requests")

    def quick_points(self):
        return tuple(self.points[i] for i in self.quick)

    def vary(self, alternative):
        """This claim with one assumption's alternative applied: Claim fields replaced, then Point
        fields replaced on every point (its quick subset keeps its indices)."""
        claim_keys = {f.name for f in fields(Claim)}
        point_keys = {f.name for f in fields(Point)}
        unknown = set(alternative) - claim_keys - point_keys
        if unknown:
            raise ValidateError(f"claim {self.name}: unknown field(s) {', '.join(sorted(unknown))}")
        c = replace(self, **{k: v for k, v in alternative.items() if k in claim_keys})
        on_points = {k: v for k, v in alternative.items() if k in point_keys}
        if on_points:
            c = replace(c, points=tuple(replace(p, **on_points) for p in c.points))
        return c


def grid(models, batches, prompt, output, phase="mean-decode", speculation=(1,)):
    """Points over models x batches x speculation lengths, in that order."""
    return tuple(Point(m, b, prompt, output, phase, s) for m in models for b in batches for s in speculation)


# --- AttAcc (Park et al., ASPLOS 2024) ------------------------------------------------------------

_ATTACC_CITATION = ("Park et al., AttAcc! (ASPLOS 2024), abstract: \"improving performance and energy efficiency "
                    "of running a 175B TbGM by up to 2.81x and 2.67x\" against the GPU system of the same memory capacity")
_ATTACC_POINTS = grid(["gpt3-175b"], [1, 54, 78], 2048, 2048)
_ATTACC_SOURCES = (
    ("model", "GPT-3 175B: the paper's 175B TbGM (abstract)"),
    ("systems", "DGX-AttAcc (8 A100 + 8 AttAcc devices of 5 HBM3-PIM stacks) against 2xDGX (16 A100), the GPU "
                "system of the same capacity (paper; pim_designs.md)"),
    ("prompt, output", "2048 + 2048 tokens, the paper's generations (docs/validation.md)"),
    ("metric", "one decode step at the mean context 3071 stands for the whole generation: the AttAcc simulator's "
               "whole generations equal their mean-context step (docs/validation.md)"),
)
_ATTACC_ASSUMPTIONS = (
    Assumption("batch 1, 54 and 78, the points of our AttAcc-simulator comparison (docs/validation.md); the batch of "
               "the paper's 'up to' figure is not in our sources, so pimdram's figure is the largest ratio over "
               "them (each batch's ratio is listed). 54 and 78 exceed the systems' memory at this context and "
               "run as capacity studies, as the reference does",
               ({"batch": 128},)),
)

ATTACC_THROUGHPUT = Claim(
    name="attacc-throughput", paper="AttAcc", citation=_ATTACC_CITATION,
    claim="DGX-AttAcc throughput over 2xDGX (same memory capacity), GPT-3 175B, up to",
    reference=2.81, system="dgx-attacc", baseline="dgx-a100-x2", metric="decode_throughput", aggregate="max",
    points=_ATTACC_POINTS, quick=(2,), sources=_ATTACC_SOURCES, assumptions=_ATTACC_ASSUMPTIONS, overcommit=True)

#: static power (docs/systems.md, "Static power"): the GPUs' idle figures are measurements of bare
#: idle boards; a GPU holding a CUDA context, as a serving GPU does, idles 26-50 W higher
_GPU_CONTEXT = Assumption(
    "GPU static power: the board's measured bare idle (A100 53 W, H100 80 W: configs/systems/dgx-a100.yaml, "
    "dgx-h100.yaml); a GPU with a CUDA context idles 26-50 W higher (Vadari, arXiv 2605.23918): alternative +50 W",
    ({"overrides": (("devices.gpu.static_power_w", 103),)},))

ATTACC_ENERGY = Claim(
    name="attacc-energy", paper="AttAcc", citation=_ATTACC_CITATION,
    claim="DGX-AttAcc energy efficiency over 2xDGX (same memory capacity), GPT-3 175B, up to",
    reference=2.67, system="dgx-attacc", baseline="dgx-a100-x2", metric="energy_efficiency", aggregate="max",
    points=_ATTACC_POINTS, quick=(2,), sources=_ATTACC_SOURCES, assumptions=_ATTACC_ASSUMPTIONS + (_GPU_CONTEXT,),
    overcommit=True)

# --- NeuPIMs (Heo et al., ASPLOS 2024) -----------------------------------------------------------

_NEUPIMS_CITATION = ("Heo et al., NeuPIMs (ASPLOS 2024), abstract: \"NeuPIMs achieves 3x, 2.4x and 1.6x throughput "
                     "improvement compared to GPU-only, NPU-only, and naive NPU+PIM\"; GPT-3 7B-175B, batch 64-512 "
                     "(pim_designs.md)")
_NEUPIMS_POINTS = grid(["gpt3-6.7b", "gpt3-13b", "gpt3-175b"], [64, 256, 512], 512, 512)
_NEUPIMS_SOURCES = (
    ("models", "GPT-3 7B, 13B and 175B of the paper's GPT-3 7B-175B (pim_designs.md; NeuPIMs sim configs/model_configs "
               "gpt3-7B: 32 heads of 4096, as gpt3-6.7b). GPT-3 30B has no preset and is left out"),
    ("batches", "64, 256 and 512: the ends and a middle of the paper's batch 64-512 (pim_designs.md)"),
    ("systems", "neupims (dual row buffers, 2 sub-batches), neupims-naive (blocked PIM, no sub-batches), npu-only, "
                "and dgx-a100-80gb for GPU-only (A100), each of 8 devices (the presets' modelling choice)"),
    ("metric", "decode tokens/s at the mean context: NeuPIMs reports generation throughput"),
)
_NEUPIMS_ASSUMPTIONS = (
    Assumption("prompt 512 + output 512: the NeuPIMs simulator's max_seq_len of 1024 (configs/system_configs); the "
               "paper's ShareGPT/Alpaca length distributions are not modelled",
               ({"prompt": 128, "output": 384},)),
    Assumption("the paper's figure taken as the geometric mean over its models and batches"),
)


def _neupims(name, baseline, reference, what, bound="equal"):
    return Claim(
        name=name, paper="NeuPIMs", citation=_NEUPIMS_CITATION, claim=what, reference=reference, system="neupims",
        baseline=baseline, metric="decode_throughput", aggregate="geomean", points=_NEUPIMS_POINTS, quick=(4,),
        sources=_NEUPIMS_SOURCES, assumptions=_NEUPIMS_ASSUMPTIONS, bound=bound, overcommit=True)


NEUPIMS_NAIVE = _neupims("neupims-naive", "neupims-naive", 1.6,
                         "NeuPIMs throughput over naive NPU+PIM (blocked PIM, no sub-batches), GPT-3")
NEUPIMS_NPU = _neupims("neupims-npu-only", "npu-only", 2.4, "NeuPIMs throughput over NPU-only, GPT-3")
NEUPIMS_GPU = _neupims("neupims-gpu-only", "dgx-a100-80gb", 3.0, "NeuPIMs throughput over GPU-only (A100), GPT-3, over",
                       bound="at least")

# --- IANUS (Seo et al., HPCA 2024) ---------------------------------------------------------------

IANUS_A100 = Claim(
    name="ianus-a100", paper="IANUS",
    citation=("Seo et al., IANUS (HPCA 2024), abstract: \"IANUS improves the performance of GPT-2 by 6.2x ... on "
              "average, compared to the NVIDIA A100 GPU\""),
    claim="one IANUS device over one A100, GPT-2, batch 1, end to end, on average",
    reference=6.2, system="ianus-device", baseline="a100", metric="throughput", aggregate="geomean",
    points=grid(["gpt2-medium", "gpt2-large", "gpt2-xl"], [1], 128, 128, phase="generate"), quick=(0,),
    sources=(
        ("system", "one device: NPU of 4 cores at 700 MHz, 8 GDDR6-AiM channels, 256 GB/s external (pim_designs.md; "
                   "preset ianus-device)"),
        ("baseline", "one A100 SXM 80GB (preset a100)"),
        ("batch", "1, BF16 (pim_designs.md); pimdram runs FP16, the same bytes"),
        ("metric", "tokens/s of the whole generation (prefill and decode): the paper reports end-to-end inference"),
    ),
    assumptions=(
        Assumption("GPT-2 medium, large and XL: the sizes are not in our sources", ()),
        Assumption("prompt 128 + output 128 tokens: the paper's input/output lengths are not in our sources",
                   ({"prompt": 128, "output": 512}, {"prompt": 512, "output": 128})),
    ))

# --- PAPI (He et al., ASPLOS 2025) ---------------------------------------------------------------

_PAPI_CITATION = ("He et al., PAPI (ASPLOS 2025), abstract: \"PAPI achieves 1.8x and 11.1x speedups over a "
                  "state-of-the-art heterogeneous LLM accelerator and a state-of-the-art PIM-only LLM accelerator\" "
                  "(LLaMA-65B, GPT-3 66B, GPT-3 175B)")
_PAPI_POINTS = grid(["llama-65b", "opt-66b", "gpt3-175b"], [4, 16, 64], 2048, 2048, speculation=(1, 2, 4))
_PAPI_SOURCES = (
    ("models", "LLaMA-65B, GPT-3 66B (OPT-66B) and GPT-3 175B (abstract)"),
    ("batches, speculation", "batch 4, 16, 64 x speculation length 1, 2, 4 (pim_designs.md)"),
    ("systems", "papi (6 A100 over 30 FC-PIM stacks, 60 Attn-PIM stacks, alpha 32), papi-a100-attacc (the same GPUs "
                "on plain HBM3 with the 60 stacks as AttAcc), papi-attacc-only (90 AttAcc stacks, no GPU)"),
    ("metric", "decode tokens/s at the mean context: PAPI accelerates decoding"),
)
_PAPI_ASSUMPTIONS = (
    Assumption("prompt 2048 + output 2048 tokens, AttAcc's setup (PAPI builds on AttAcc's simulator); PAPI's lengths "
               "are not in our sources", ({"prompt": 512, "output": 512},)),
    Assumption("the paper's figure taken as the geometric mean over models, batches and speculation lengths"),
)

PAPI_ATTACC = Claim(
    name="papi-a100-attacc", paper="PAPI", citation=_PAPI_CITATION,
    claim="PAPI speedup over A100+AttAcc (the heterogeneous GPU+PIM system)", reference=1.8, system="papi",
    baseline="papi-a100-attacc", metric="decode_throughput", aggregate="geomean", points=_PAPI_POINTS,
    quick=(9, 26), sources=_PAPI_SOURCES, assumptions=_PAPI_ASSUMPTIONS, overcommit=True)

PAPI_PIM_ONLY = Claim(
    name="papi-attacc-only", paper="PAPI", citation=_PAPI_CITATION,
    claim="PAPI speedup over AttAcc-only (the PIM-only system)", reference=11.1, system="papi",
    baseline="papi-attacc-only", metric="decode_throughput", aggregate="geomean", points=_PAPI_POINTS,
    quick=(9, 26), sources=_PAPI_SOURCES, assumptions=_PAPI_ASSUMPTIONS, overcommit=True)

# --- Hybe (ISCA 2025) -----------------------------------------------------------------------------

_HYBE_CITATION = ("Hybe (ISCA 2025), abstract: \"Hybe achieves 2.1x speedup for Phi-3 with 100K-token context window "
                  "and 3.9x energy efficiency for Llama-3 with 1M-token context\" against H100 GPUs running vLLM")
_HYBE_SOURCES = (
    ("system", "hybe: H100s for prefill, bandwidth-matched NPUs with the same HBM for decode (abstract; preset hybe)"),
    ("batch", "1: \"batching becomes infeasible in models with large context windows over 100K tokens\" (abstract)"),
    ("metric", "whole generations (prefill on the GPUs, decode on the NPUs), as the paper's end-to-end figures"),
)
_HYBE_ASSUMPTIONS = (
    Assumption("output 1024 tokens: the paper's output lengths are not in our sources", ({"output": 256},)),
    Assumption("baseline dgx-h100 (8 H100), the H100 system of the hybe preset's GPUs; the paper's GPU count is not "
               "in our sources"),
)

HYBE_PHI3 = Claim(
    name="hybe-phi3", paper="Hybe", citation=_HYBE_CITATION,
    claim="Hybe speedup over an H100 system, Phi-3 with 100K context, up to", reference=2.1, system="hybe",
    baseline="dgx-h100", metric="stream_throughput", aggregate="single",
    points=(Point("phi3-mini", 1, 100_000, 1024, "generate", stream=16),), quick=(0,),
    sources=_HYBE_SOURCES + (
        ("model", "Phi-3-mini (the 128K-context variant has the same shapes; its rotary scaling does not change the "
                  "kernels)"),
        ("schedule", "stage-wise pipelining: \"Hybe scheduler applies stage-wise pipelining that dynamically assigns "
                     "queued requests to idle hardware\" (abstract): the next request's prefill on the GPUs while the "
                     "current one decodes on the NPUs; the H100 system runs both phases on the same GPUs, one request "
                     "after another (batch 1, as above)")),
    assumptions=_HYBE_ASSUMPTIONS + (
        Assumption("a stream of 16 requests queued at once (the paper's request count and arrival process are not in "
                   "our sources); the pipelined gain grows with the stream towards its steady state",
                   ({"stream": 4}, {"stream": 64})),),
    overcommit=True)

HYBE_LLAMA3 = Claim(
    name="hybe-llama3-energy", paper="Hybe", citation=_HYBE_CITATION,
    claim="Hybe energy efficiency over an H100 system, Llama-3 with 1M context", reference=3.9, system="hybe",
    baseline="dgx-h100", metric="energy_efficiency", aggregate="single",
    points=(Point("llama3-8b", 1, 1_000_000, 1024, "generate"),), quick=(0,),
    sources=_HYBE_SOURCES + (("model", "Llama-3-8B (1M-context variants have the same shapes; their rotary scaling "
                                       "does not change the kernels)"),),
    assumptions=_HYBE_ASSUMPTIONS + (
        Assumption("static power of Hybe's NPU logic: 0 W, none in our sources (a lower bound, in Hybe's favour); its "
                   "HBM3 stacks draw the IDD model's standby and refresh (docs/systems.md, \"Static power\")"),
        replace(_GPU_CONTEXT, alternatives=({"overrides": (("devices.gpu.static_power_w", 130),)},))),
    overcommit=True)

#: every claim, in the order `pimdram validate all` prints them
CLAIMS = (ATTACC_THROUGHPUT, ATTACC_ENERGY, NEUPIMS_NAIVE, NEUPIMS_NPU, NEUPIMS_GPU, IANUS_A100, PAPI_ATTACC,
          PAPI_PIM_ONLY, HYBE_PHI3, HYBE_LLAMA3)
