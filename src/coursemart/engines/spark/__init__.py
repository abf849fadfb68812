"""The Spark engine: generate and load on Apache Spark, with the same lake and the same warehouse.

Imported only when ``--engine spark`` is chosen. :mod:`.driver` starts Spark and its driver JVM;
:mod:`.generation` writes part files from the executors into the shared generate frame;
:mod:`.staging` validates and stages rows on the executors for the shared load frame; :mod:`.jdbc`
and :mod:`.paths` say where Spark writes and reads.
"""

from coursemart.engines.spark.driver import SparkUnavailableError, recording, session, stop
from coursemart.engines.spark.generation import generate
from coursemart.engines.spark.jdbc import jdbc_target, stage_table
from coursemart.engines.spark.paths import hadoop_path
from coursemart.engines.spark.staging import SparkLoad, load, repeated_ids

__all__ = [
    "SparkLoad",
    "SparkUnavailableError",
    "generate",
    "hadoop_path",
    "jdbc_target",
    "load",
    "recording",
    "repeated_ids",
    "session",
    "stage_table",
    "stop",
]
