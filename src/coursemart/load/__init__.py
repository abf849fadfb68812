"""Loading the lake into the warehouse: exactly once, validated, through per-backend fast paths.

:mod:`coursemart.load.stage` is the one frame both engines plug into; :mod:`coursemart.load.local`
is the in-process engine's part of it.
"""

from coursemart.load.local import load
from coursemart.load.stage import CHECKPOINTS, LoadJob, LoadResult

__all__ = ["CHECKPOINTS", "LoadJob", "LoadResult", "load"]
