"""The system model of a kernel replay: each kernel's duration and energy on its device (xPU
roofline with utilisation, fixed cost and occupancy; PIM kernels lowered to command programs and
simulated by the engine; transfers and collectives on links), list scheduling by dependencies,
and the statistics tables. `replay_kernels` is the entry point (`pimdram replay TRACE.jsonl`).
"""
from .replay import (KernelReplayError, SimulationState, StepRun, is_kernel_trace, replay_kernels,
                     simulate_kernel_trace)

__all__ = ["replay_kernels", "simulate_kernel_trace", "SimulationState", "StepRun", "is_kernel_trace", "KernelReplayError"]
