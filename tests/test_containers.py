"""The project's Dockerfile and compose.yaml, built and run for real with podman and podman-compose.

One stack (PostgreSQL, the one-shot pipeline, the API) is built and brought up for the module, under
a project name and a host port of its own, and always taken down with its volumes. The images it is
built from (Debian with Python, PostgreSQL from Debian's packages) stand in for python:3.12-slim and
postgres:17, which no registry here can supply: tests/podman.py.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from coursemart.generate import DEFAULT_COURSES
from tests import podman as containers
from tests.conftest import unavailable
from tests.test_api_browser import CHROMIUM_ARGS, TIMEOUT_MS
from tests.test_api_browser import chromium as chromium  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

#: 314 MB before the lake became a Delta table; delta-rs (``deltalake``, one native library that
#: every command of the image may need) adds about 147 MB: 461 MB on 2026-12-06.
IMAGE_SIZE_LIMIT = 500_000_000
USER = "10001"


@dataclass
class Stack:
    """A compose project of compose.yaml, driven through podman-compose."""

    engine: containers.Podman
    compose_command: list[str]
    project: str
    image: str
    url: str

    def compose(self, *args: str, timeout: float = 600) -> str:
        command = [*self.compose_command, "-p", self.project, "-f", "compose.yaml", *args]
        result = containers.run(command, env=self.engine.env, cwd=containers.REPO, timeout=timeout)
        return result.stdout + result.stderr

    def container(self, service: str) -> str:
        names = self.engine(
            "ps", "--all", "--format", "{{.Names}}",
            "--filter", f"label=io.podman.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).stdout.split()  # fmt: skip
        assert names, f"no container for the {service} service"
        return names[0]

    def sql(self, query: str) -> str:
        """``query`` run by psql inside the PostgreSQL container, as text."""
        psql = ["psql", "--username=coursemart", "--dbname=coursemart", "-tAc", query]
        return self.engine("exec", self.container("postgres"), *psql).stdout.strip()

    def counts(self) -> tuple[int, int]:
        """Courses in the warehouse, and batches in its manifest."""
        courses = int(self.sql("SELECT count(*) FROM courses"))
        return courses, int(self.sql("SELECT count(*) FROM coursemart_batches"))

    def finished(self, service: str, timeout: float = 300) -> tuple[int, str]:
        """Wait for the one-shot ``service`` to exit; its exit code and its output."""
        container = self.container(service)
        deadline = time.monotonic() + timeout
        while self.engine.inspect(container, "{{.State.Status}}") != "exited":
            assert time.monotonic() < deadline, f"{service} still runs after {timeout} s"
            time.sleep(0.5)
        code = int(self.engine.inspect(container, "{{.State.ExitCode}}"))
        logs = self.engine("logs", container)
        return code, logs.stdout + logs.stderr

    def recent_courses(self, timeout: float = 120) -> list[dict[str, Any]]:
        """/api/GetRecentCourses from the host, once the API answers with courses."""
        deadline = time.monotonic() + timeout
        problem = "no answer"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.url}/api/GetRecentCourses", timeout=10)
                body = response.json()
                if response.status_code == 200 and body["data"]:
                    return list(body["data"])
                problem = f"{response.status_code} {body.get('message')}"
            except (httpx.HTTPError, json.JSONDecodeError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
        logs = self.compose("logs", timeout=60)[-3000:]
        raise AssertionError(f"the API gave no courses within {timeout} s ({problem}):\n{logs}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def engine() -> containers.Podman:
    engine = containers.podman()
    if isinstance(engine, str):
        unavailable(engine)
    assert isinstance(engine, containers.Podman)
    return engine


@pytest.fixture(scope="module")
def stack(engine: containers.Podman) -> Iterator[Stack]:
    compose = containers.podman_compose()
    if compose is None:
        unavailable("podman-compose is not installed (pip install -e '.[dev]')")
    assert compose is not None
    with containers.images_lock():
        problem = containers.base_image(engine)
        if problem:
            unavailable(problem)
        postgres = containers.postgres_image(engine)
    project = f"cmtest{uuid.uuid4().hex[:10]}"
    port = free_port()
    image = f"localhost/coursemart-test/coursemart:{project}"
    empty_env = containers.CACHE / "empty.env"
    empty_env.write_text("", encoding="utf-8")
    stack_engine = containers.Podman(
        engine.env
        | containers.NO_LAYER_CACHE
        | {
            "COURSEMART_BASE_IMAGE": containers.BASE_IMAGE,
            "POSTGRES_IMAGE": postgres,
            "COURSEMART_IMAGE": image,
            "COURSEMART_API_PORT": str(port),
            "POSTGRES_PASSWORD": uuid.uuid4().hex,
        }
    )
    command = [compose, "--env-file", str(empty_env)]
    stack = Stack(stack_engine, command, project, image, f"http://127.0.0.1:{port}")
    built = [image, f"{image}-pipeline"]  # the API's (and pipeline's) image; pipeline-abfs's
    try:
        stack.compose("build", "api")  # the pipeline service runs the same image
        stack.compose("up", "-d")
        yield stack
    finally:
        stack.compose("--profile", "azure", "down", "--volumes", timeout=180)
        engine.remove_images(built)
    left = engine.images_once_named(built)
    assert left == [], f"the run left images behind: {left}"


def test_the_api_serves_from_the_host_the_courses_the_pipeline_loaded_into_postgresql(
    stack: Stack,
) -> None:
    courses = stack.recent_courses()

    assert stack.counts() == (DEFAULT_COURSES, 1)
    first = courses[0]
    in_postgres = stack.sql(
        f"SELECT course_name FROM courses WHERE course_id = {first['course_id']}"
    )
    assert in_postgres == first["course_name"]
    newest = stack.sql(
        "SELECT course_id FROM courses ORDER BY start_date DESC, course_id DESC LIMIT 1"
    )
    assert int(newest) == first["course_id"]


def test_the_page_lists_the_stacks_courses_in_chromium(stack: Stack, chromium: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    stack.recent_courses()  # the stack serves courses
    upcoming = httpx.get(f"{stack.url}/v1/courses/recent?order=upcoming&limit=1", timeout=10)
    first = upcoming.json()["data"][0]  # the page opens on the upcoming courses
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{stack.url}/")
            rows = page.locator("#courses tbody tr")
            expect(rows).to_have_count(50)
            expect(rows.first).to_have_attribute("data-course-id", str(first["course_id"]))
            expect(page.locator("#error")).to_be_hidden()
        finally:
            browser.close()


def test_running_the_pipeline_service_again_adds_nothing(stack: Stack) -> None:
    stack.recent_courses()
    before = stack.counts()

    output = stack.compose("run", "--rm", "pipeline", "coursemart", "run")  # once, not following

    assert "nothing to do" in output
    assert stack.counts() == before


def test_taking_the_stack_down_and_up_keeps_the_data_in_its_volumes(stack: Stack) -> None:
    courses = stack.recent_courses()
    before = stack.counts()

    stack.compose("down")
    stack.compose("up", "-d")

    assert stack.recent_courses() == courses
    assert stack.counts() == before


def test_the_containers_run_as_a_non_root_user(stack: Stack) -> None:
    stack.recent_courses()
    api = stack.container("api")

    assert stack.engine("exec", api, "id", "-u").stdout.strip() == USER
    for service in ("api", "pipeline"):
        assert (
            stack.engine.inspect(stack.container(service), "{{.Config.User}}") == f"{USER}:{USER}"
        )


def test_the_images_health_check_finds_the_api_ready(stack: Stack) -> None:
    stack.recent_courses()
    check = stack.engine.inspect(stack.image, "{{json .Config.Healthcheck.Test}}", kind="image")

    assert "/ready" in check and "curl" not in check
    assert stack.engine("healthcheck", "run", stack.container("api"), check=False).returncode == 0
    assert (
        stack.engine("healthcheck", "run", stack.container("postgres"), check=False).returncode == 0
    )


def test_the_image_holds_no_settings_and_no_data(stack: Stack) -> None:
    environment = stack.engine.inspect(stack.image, "{{json .Config.Env}}", kind="image")
    listing = stack.engine("run", "--rm", "--entrypoint", "ls", stack.image, "-A", "data")

    assert "COURSEMART_" not in environment
    assert listing.stdout.strip() == ""


def test_the_api_image_is_under_500_mb(stack: Stack) -> None:
    size = int(stack.engine.inspect(stack.image, "{{.Size}}", kind="image"))

    assert size < IMAGE_SIZE_LIMIT, f"{size / 1e6:.0f} MB"


def test_the_azure_profile_keeps_a_lake_on_azurite_and_loads_it_once(stack: Stack) -> None:
    with containers.images_lock():
        azurite = containers.azurite_image(stack.engine)
    if azurite is None:
        unavailable("Azurite is not installed: `make test` installs it with npm (needs Node.js)")
    assert azurite is not None
    stack.engine.env["AZURITE_IMAGE"] = azurite
    stack.engine.env["COURSEMART_PIPELINE_IMAGE"] = f"{stack.image}-pipeline"
    courses, batches = stack.counts()

    stack.compose("--profile", "azure", "up", "-d", "azurite", "pipeline-abfs")
    code, output = stack.finished("pipeline-abfs")
    assert code == 0, output
    assert "loaded 1 batch (version 0," in output and "100,000 loaded" in output

    again = stack.compose("--profile", "azure", "run", "--rm", "pipeline-abfs")

    assert "abfs://lake/coursemart already has courses" in again
    assert "nothing to do" in again
    assert stack.counts() == (courses, batches)  # its warehouse is its own: one lake each


def test_the_pipeline_follows_the_lake_a_new_commit_is_served_within_seconds(stack: Stack) -> None:
    stack.recent_courses()
    courses, batches = stack.counts()
    pipeline = stack.container("pipeline")
    assert stack.engine.inspect(pipeline, "{{.State.Status}}") == "running"  # it follows

    stack.engine("exec", pipeline, "coursemart", "generate", "-q", "--courses", "100")
    committed = time.monotonic()
    deadline = committed + 60
    freshness: dict[str, Any] = {}
    while time.monotonic() < deadline:
        freshness = httpx.get(f"{stack.url}/v1/freshness", timeout=10).json()
        if freshness.get("loaded_version") == 1 and freshness.get("lag_versions") == 0:
            break
        time.sleep(0.2)
    served_after = time.monotonic() - committed

    assert freshness["lake_version"] == 1 and freshness["loaded_version"] == 1, freshness
    assert stack.counts() == (courses + 100, batches + 1)
    assert served_after < 30  # a poll every 0.5 s; generous for a busy machine


def test_every_service_runs_with_a_memory_limit(stack: Stack) -> None:
    limits = {
        service: int(stack.engine.inspect(stack.container(service), "{{.HostConfig.Memory}}"))
        for service in ("postgres", "pipeline", "api")
    }

    assert all(limit > 0 for limit in limits.values()), limits


def test_the_api_starts_and_says_not_ready_when_the_pipeline_fails(stack: Stack) -> None:
    """A pipeline that fails at every start (a lake it may not write) keeps no API from serving:
    ``/health`` answers, ``/ready`` says not ready."""
    port = free_port()
    failing = Stack(
        containers.Podman(
            stack.engine.env
            | {"COURSEMART_API_PORT": str(port), "COURSEMART_LAKE": "/proc/coursemart-lake"}
        ),
        stack.compose_command,
        f"{stack.project}fail",
        stack.image,
        f"http://127.0.0.1:{port}",
    )
    health = ready = None
    pipeline = ""
    try:
        failing.compose("up", "-d", "--no-build", "postgres", "pipeline", "api")
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (health != 200 or pipeline in ("", "0")):
            try:
                health = httpx.get(f"{failing.url}/health", timeout=5).status_code
                ready = httpx.get(f"{failing.url}/ready", timeout=5).status_code
            except httpx.HTTPError:
                pass
            pipeline = failing.engine.inspect(failing.container("pipeline"), "{{.State.ExitCode}}")
            time.sleep(1)
    finally:
        failing.compose("down", "--volumes", timeout=180)

    assert health == 200
    assert ready == 503
    assert pipeline != "0"


def test_the_stack_will_not_start_without_a_database_password(engine: containers.Podman) -> None:
    compose = containers.podman_compose()
    assert compose is not None
    empty_env = containers.CACHE / "empty.env"
    empty_env.write_text("", encoding="utf-8")
    environment = {k: v for k, v in engine.env.items() if k != "POSTGRES_PASSWORD"}
    refused = containers.run(
        [compose, "--env-file", str(empty_env), "-f", "compose.yaml", "config"],
        env=environment,
        cwd=containers.REPO,
        timeout=120,
        check=False,
    )

    assert refused.returncode != 0
    assert "set POSTGRES_PASSWORD" in refused.stdout + refused.stderr
