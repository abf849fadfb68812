"""The server under one hostile client: each attack of the hardening review, sent to
`coursemart serve` as it ships (one worker, default settings) over a SQLite catalog, while a
bystander asks for a page of the listing every 50 ms.

- **endless headers**: 20 connections, each sending a header that never ends (up to 50 MB);
- **slow heads**: 1,100 connections, each sending a byte of its request now and then;
- **long query strings**: 20,000 requests, each with another 60 KB query string;
- **new searches**: distinct two-word searches, 8 at once (every one a new search).

For each: the server's own memory (anonymous resident pages, sampled every 0.2 s) before, at its
highest and after, its open files at their highest, and the bystander's answers (failures, p50,
p99, max).
The anchors are the server's own memory before the attack and the bystander's answers with no
attack (the first case).

    python bench/attacks.py [--courses 200000] [--searches 5000] [--quick] [--results DIR]
"""

from __future__ import annotations

import argparse
import random
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from api import free_port, search_words, serving  # noqa: E402
from measure import Results, add_run_options, coursemart_command, run_command  # noqa: E402

HEAD = b"GET /health HTTP/1.1\r\nHost: coursemart\r\n"
BYSTANDER_PATH = "/v1/courses/recent?limit=10"
#: Growth of the server's memory an attack may cause (caches included: 64 MiB of answers,
#: 16 MiB of remembered requests, 128 MiB of search matches at most).
GROWTH_MIB = {"endless headers": 50, "slow heads": 50, "long query strings": 50}
SEARCH_GROWTH_MIB = 64 + 16 + 128 + 50


def rss_mib(pid: int) -> float:
    """The process's own memory (anonymous resident pages): not the pages of the SQLite file
    that every reading connection maps, which are the operating system's file cache."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def server_pid(port: int) -> int:
    """The process listening on ``port`` (the one worker)."""
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
                inode = fields[9]
                break
    assert inode is not None, f"nothing listens on {port}"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if fd.readlink().name == f"socket:[{inode}]":
                    return int(proc.name)
        except (PermissionError, FileNotFoundError, OSError):
            continue
    raise SystemExit(f"no process holds the socket listening on {port}")


class Watch:
    """Samples the server's memory and open files, and runs the bystander, until stopped."""

    def __init__(self, base: str, pid: int) -> None:
        self.base, self.pid = base, pid
        self.memory: list[float] = []
        self.files: list[int] = []
        self.latencies: list[float] = []
        self.failures = 0
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.sample), threading.Thread(target=self.ask)]

    def __enter__(self) -> Watch:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join()

    def sample(self) -> None:
        while not self.stopped.wait(0.2):
            self.memory.append(rss_mib(self.pid))
            self.files.append(open_files(self.pid))

    def ask(self) -> None:
        while not self.stopped.wait(0.05):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.base + BYSTANDER_PATH, timeout=10) as answer:
                    answer.read()
                    ok = answer.status == 200
            except OSError:
                ok = False
            self.latencies.append((time.perf_counter() - started) * 1000)
            self.failures += 0 if ok else 1

    def summary(self, name: str, before: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "attack": name,
            "rss_before_mib": round(before, 1),
            "rss_max_mib": round(max(self.memory, default=before), 1),
            "rss_after_mib": round(rss_mib(self.pid), 1),
            "open_files_max": max(self.files, default=0),
            "bystander_requests": len(ordered),
            "bystander_failures": self.failures,
            "bystander_p50_ms": round(statistics.median(ordered), 1) if ordered else None,
            "bystander_p99_ms": round(ordered[int(len(ordered) * 0.99)], 1) if ordered else None,
            "bystander_max_ms": round(ordered[-1], 1) if ordered else None,
        }


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=60)


def nothing(port: int, seconds: float) -> dict[str, int]:
    time.sleep(seconds)
    return {}


def endless_headers(port: int, connections: int, megabytes: int) -> dict[str, int]:
    refused = sent_total = 0
    lock = threading.Lock()

    def one() -> None:
        nonlocal refused, sent_total
        client = connect(port)
        sent = 0
        try:
            client.sendall(HEAD + b"X-Padding: ")
            chunk = b"a" * (1 << 20)
            for _ in range(megabytes):
                client.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # closed by the server
        try:
            answer = client.recv(200)
        except OSError:
            answer = b"HTTP/1.1 431 (reset)"
        client.close()
        with lock:
            refused += answer.startswith(b"HTTP/1.1 431")
            sent_total += sent

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"connections": connections, "answered_431": refused, "bytes_sent": sent_total}


def slow_heads(port: int, connections: int, seconds: float) -> dict[str, int]:
    clients: list[socket.socket] = []
    for _ in range(connections):
        client = connect(port)
        client.setblocking(False)
        clients.append(client)
    request = HEAD + b"X-Slow: " + b"b" * 64
    position = [0] * connections
    closed: set[int] = set()
    answered_408 = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(closed) < connections:
        for i, client in enumerate(clients):
            if i in closed:
                continue
            try:
                received = client.recv(200)
                if received or received == b"":
                    answered_408 += received.startswith(b"HTTP/1.1 408")
                    closed.add(i)
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
                continue
            try:
                client.send(request[position[i] % len(request) : position[i] % len(request) + 1])
                position[i] += 1
            except OSError:
                closed.add(i)
        time.sleep(1.0)
    for client in clients:
        client.close()
    return {
        "connections": connections,
        "closed_by_server": len(closed),
        "answered_408": answered_408,
    }


def long_query_strings(port: int, requests: int, size: int) -> dict[str, int]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    per_thread = requests // 4

    def one(seed: int) -> None:
        generator = random.Random(seed)
        client = connect(port)
        for _ in range(per_thread):
            value = "".join(generator.choices("abcdefghijklmnopqrstuvwxyz", k=size))
            client.sendall(
                f"GET /v1/courses/recent?limit=10&x={value} HTTP/1.1\r\nHost: c\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(65536)
            top, _, body = head.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in top.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += client.recv(65536)
            status = int(top.split(b" ")[1])
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        client.close()

    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"requests": per_thread * 4, **{f"status_{k}": v for k, v in statuses.items()}}


def new_searches(port: int, searches: int) -> dict[str, int]:
    words = search_words()
    pairs = [(a, b) for a in words for b in words if a < b]
    random.Random(7).shuffle(pairs)
    queue = pairs[:searches]
    failures = 0
    lock = threading.Lock()

    def one() -> None:
        nonlocal failures
        while True:
            with lock:
                if not queue:
                    return
                first, second = queue.pop()
            url = f"http://127.0.0.1:{port}/v1/courses/recent?limit=10&q={first}+{second}"
            try:
                with urllib.request.urlopen(url, timeout=60) as answer:
                    answer.read()
            except OSError:
                with lock:
                    failures += 1

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"searches": min(searches, len(pairs)), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=200_000)
    parser.add_argument("--searches", type=int, default=5_000)
    add_run_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.courses, args.searches = 20_000, 500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this client's 1,100 sockets
    results = Results("attacks", args)
    folder = Path(tempfile.mkdtemp(prefix="coursemart-attacks-"))
    lake, url = str(folder / "lake"), f"sqlite:///{folder / 'warehouse.db'}"
    run_command("generate", coursemart_command("generate", "-n", str(args.courses), "--lake", lake))
    run_command("load", coursemart_command("load", "-q", "--lake", lake, "--warehouse", url))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = coursemart_command("serve", "--warehouse", url, "--port", str(port))
    attacks: list[tuple[str, Callable[[], dict[str, int]]]] = [
        ("no attack", lambda: nothing(port, 10)),
        ("endless headers", lambda: endless_headers(port, 20, 50)),
        ("slow heads", lambda: slow_heads(port, 1_100, 30)),
        ("long query strings", lambda: long_query_strings(port, 20_000, 60_000)),
        ("new searches", lambda: new_searches(port, args.searches)),
    ]
    runs = []
    with serving(command, base + "/health", env={"COURSEMART_API_KEYS": ""}):
        pid = server_pid(port)
        for name, attack in attacks:
            print(f"{name} ...", flush=True)
            before = rss_mib(pid)
            started = time.perf_counter()
            with Watch(base, pid) as watch:
                outcome = attack()
                time.sleep(1)
            run = {
                **watch.summary(name, before),
                "seconds": round(time.perf_counter() - started, 1),
                **outcome,
            }
            print(run, flush=True)
            runs.append(run)
    calm = runs[0]
    checks = []
    for run in runs[1:]:
        growth = run["rss_max_mib"] - run["rss_before_mib"]
        bound = GROWTH_MIB.get(run["attack"], SEARCH_GROWTH_MIB)
        checks.append(
            f"{run['attack']}: server memory {run['rss_before_mib']:.0f} → at most "
            f"{run['rss_max_mib']:.0f} MiB (+{growth:.0f}; target ≤ +{bound}: "
            f"{'met' if growth <= bound else 'MISSED'}); bystander {run['bystander_failures']} "
            f"failures of {run['bystander_requests']} (target 0: "
            f"{'met' if run['bystander_failures'] == 0 else 'MISSED'}), p99 "
            f"{run['bystander_p99_ms']} ms against {calm['bystander_p99_ms']} ms with no attack"
        )
    print("targets:\n" + "\n".join(checks))
    results.save({"courses": args.courses, "runs": runs, "checks": checks})


if __name__ == "__main__":
    main()
