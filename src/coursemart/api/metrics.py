"""Prometheus metrics: requests and latency per route and status, courses served, the data's
version and age, and the process's CPU, memory and open files.

Request counts and latencies are prometheus-client metrics in a registry per app. With several
worker processes (``coursemart serve --workers N``), the server points prometheus-client's
multiprocess mode at a folder of its own (``PROMETHEUS_MULTIPROC_DIR``): each worker writes its
counts there and ``/metrics``, whichever worker answers it, adds up every worker's. The data
version and the last load's time and age are not counted but read when ``/metrics`` is asked,
from the warehouse that every worker shares.

Process metrics (prometheus-client's process collector, read from ``/proc``) cannot be added up:
one process answers them for itself, and with several workers every live worker's are reported,
each with its ``pid`` label, whichever worker answers ``/metrics``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from coursemart.api.freshness import Lag

#: The environment variable that turns on prometheus-client's multiprocess mode.
MULTIPROCESS_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
#: Latency buckets, in seconds: most answers take well under a millisecond.
BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: The route label of a request no route matched (so that unknown paths add no label values).
UNMATCHED: Final = "unmatched"


class DataCollector(Collector):
    """The data version and the last load, as the warehouse says when ``/metrics`` is read,
    and the lake's latest version and the lag behind it when the server reads the lake."""

    def __init__(
        self, read: Callable[[], tuple[str, datetime | None]], behind: Lag | None = None
    ) -> None:
        self.read = read
        self.behind = behind

    def collect(self) -> Iterator[Metric]:
        yield from self.lake_metrics()
        version, loaded_at = self.read()
        info = InfoMetricFamily(
            "coursemart_data_version", "The data version: the latest load that changed the data."
        )
        info.add_metric([], {"version": version})
        yield info
        if loaded_at is None:
            return
        yield GaugeMetricFamily(
            "coursemart_last_load_timestamp_seconds",
            "When the latest load that changed the data finished (Unix time).",
            value=loaded_at.timestamp(),
        )
        yield GaugeMetricFamily(
            "coursemart_last_load_age_seconds",
            "Seconds since the latest load that changed the data finished.",
            value=max(0.0, time.time() - loaded_at.timestamp()),
        )

    def lake_metrics(self) -> Iterator[Metric]:
        """The lake's latest version and commit time, the latest loaded and the lag."""
        behind = self.behind
        if behind is None:
            return
        gauges = [
            (
                "lake_version",
                "The latest version of the lake's courses table.",
                behind.head.version,
            ),
            (
                "lake_commit_timestamp_seconds",
                "When the lake's latest version was committed (Unix time).",
                behind.head.committed_at.timestamp(),
            ),
            (
                "lake_lag_versions",
                "Versions committed to the lake and not loaded into the warehouse yet.",
                behind.versions,
            ),
            (
                "lake_lag_seconds",
                "How long the oldest version not loaded yet has waited (0 when none waits).",
                behind.seconds(time.time()),
            ),
        ]
        if behind.loaded is not None:
            gauges.append(
                (
                    "loaded_lake_version",
                    "The greatest version of the lake's table the warehouse has loaded.",
                    behind.loaded,
                )
            )
        for name, text, value in gauges:
            yield GaugeMetricFamily(f"coursemart_{name}", text, value=float(value))


class Metrics:
    """One app's request metrics."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "coursemart_http_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coursemart_http_request_duration_seconds",
            "Time from a request's arrival to its answer's end, by route.",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.rows_served = Counter(
            "coursemart_rows_served",
            "Courses sent in answers (304 answers send none).",
            registry=self.registry,
        )
        if not self.multiprocess:
            ProcessCollector(registry=self.registry)
        self._counts: dict[tuple[str, str, int], Counter] = {}
        self._latencies: dict[str, Histogram] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        count = self._counts.get((route, method, status))
        if count is None:
            count = self._counts[route, method, status] = self.requests.labels(
                route, method, str(status)
            )
        count.inc()
        latency = self._latencies.get(route)
        if latency is None:
            latency = self._latencies[route] = self.latency.labels(route)
        latency.observe(seconds)

    def exposition(self, data: DataCollector) -> bytes:
        """The Prometheus text format: every worker's counts (in multiprocess mode) and the data
        collector's reading."""
        registry = CollectorRegistry()
        if self.multiprocess:
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(WorkerProcesses(os.environ[MULTIPROCESS_DIR]))
        else:
            registry.register(_Forward(self.registry))
        registry.register(data)
        return generate_latest(registry)


class _Forward(Collector):
    """Another registry's metrics, collected into this one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class WorkerProcesses(Collector):
    """Every live worker's process metrics, each sample labelled with the worker's ``pid``.

    The workers are the processes that have written counts to the multiprocess folder (each
    file is named ``<kind>_<pid>.db``, and a worker writes one as soon as its app starts) and
    are still running.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def workers(self) -> list[int]:
        """The pids of the running workers, in order."""
        pids = {path.stem.rpartition("_")[2] for path in self.folder.glob("*.db")}
        return sorted(int(pid) for pid in pids if pid.isdigit() and Path("/proc", pid).exists())

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.workers():
            reader = ProcessCollector(pid=functools.partial(int, pid), registry=None)
            for family in reader.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()
