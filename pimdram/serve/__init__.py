"""Request streams over time: how a system serves requests that arrive one after another."""
from .pipeline import StageTimes, decode_residency, pipeline_schedule, stage_split, stream_figures

__all__ = ["StageTimes", "decode_residency", "pipeline_schedule", "stage_split", "stream_figures"]
