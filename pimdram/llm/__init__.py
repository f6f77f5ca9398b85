"""LLM workloads: model descriptions, workloads and the kernels of a forward pass."""
from .kernels import Kernel, Operand, StepBuilder, expert_loads
from .models import ModelSpec, load_hf_config, load_model
from .workload import DTYPE_BITS, Request, Workload, dtype_bytes, load_requests_csv

__all__ = ["ModelSpec", "load_model", "load_hf_config", "Workload", "Request", "load_requests_csv", "DTYPE_BITS",
           "dtype_bytes", "Kernel", "Operand", "StepBuilder", "expert_loads"]
