"""Mapping and placement policies, and the generator of kernel traces (systems: pimdram.config.system)."""
from .generate import generate_kernel_trace

__all__ = ["generate_kernel_trace"]
