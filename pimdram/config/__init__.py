"""Configuration: finding, reading, validating and resolving YAML presets (memory, PIM, model, system)."""
from .files import config_dirs, find_config, list_configs, load_yaml, preset_description
from .section import Section

__all__ = ["config_dirs", "find_config", "list_configs", "load_yaml", "preset_description", "Section"]
