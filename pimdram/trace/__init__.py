"""Trace formats: request traces (requests.py) and kernel traces; read, write, validate."""
