"""What the system model says about one kernel: its duration, where the figure came from, and its
energy by kind."""
import math
from dataclasses import dataclass, field

#: energy kinds of the breakdown: off-chip or in-array memory access, arithmetic, on-chip data
#: movement (caches, registers, PIM buffers and internal paths), links between devices
ENERGY_KINDS = ("memory", "compute", "onchip", "communication")


def joules(quantity, pj_each):
    """quantity x pJ in J; 0 when the quantity is 0 (a missing figure, NaN, only matters when it is used)."""
    return quantity * pj_each * 1e-12 if quantity else 0.0


def energy(**parts):
    """An energy breakdown (J by kind); kinds not given are 0."""
    unknown = set(parts) - set(ENERGY_KINDS)
    if unknown:
        raise ValueError(f"unknown energy kind(s): {', '.join(sorted(unknown))}")
    return {k: float(parts.get(k, 0.0)) for k in ENERGY_KINDS}


@dataclass
class KernelTiming:
    duration_ns: float          # how long it holds its device or link
    source: str                 # "simulated", "reused", "model", "fused"
    energy: dict = field(default_factory=energy)    # J by kind (ENERGY_KINDS); NaN where a figure is missing
    commands: int = 0
    channels_simulated: int = 0
    channels_total: int = 0
    per_command: object = None  # PIM: commands issued over every channel, by command index
    memory: str = ""
    log: object = None          # PIM, with command_log: the kernel's commands from its start (expanded columns)
    latency_ns: float = 0.0     # transfers: the data arrives this long after the link is free again

    @property
    def energy_j(self):
        """Total energy; NaN when a kind it needs has no figure."""
        return math.fsum(self.energy.values())
