"""Loading the lake into the warehouse: exactly once, validated, through per-backend fast paths."""

from coursemart.load.loader import CHECKPOINTS, LoadResult, load

__all__ = ["CHECKPOINTS", "LoadResult", "load"]
