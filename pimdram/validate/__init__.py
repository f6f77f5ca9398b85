"""`pimdram validate`: the seed papers' headline claims (claims.py), run in pimdram
(runner.py) and printed as a table (table.py)."""
from .claims import CLAIMS, METRICS, Assumption, Claim, Point, ValidateError
from .runner import aggregate, point_ratio, run_claims, select_claims
from .table import format_table

__all__ = ["CLAIMS", "METRICS", "Claim", "Point", "Assumption", "run_claims", "select_claims", "point_ratio",
           "aggregate", "format_table", "ValidateError"]
