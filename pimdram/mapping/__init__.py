"""Systems, mapping and placement policies, and the generator of kernel traces."""
from .generate import generate_kernel_trace
from .systems import SystemSpec, load_system

__all__ = ["SystemSpec", "load_system", "generate_kernel_trace"]
