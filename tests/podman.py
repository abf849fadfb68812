"""Containers for the tests: podman with the settings this kind of machine needs, base images made
from Debian's packages (no container registry is reachable here), and compose projects.

The base images are built once and kept in podman's storage under names the next run reuses; a
build takes a machine-wide lock so that two test runs never build the same image at once. The
images a run builds of the project itself are built without buildah's layer cache and removed
when the run ends, so that a run leaves no unnamed image behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "containers"
#: Listings of every image, tried again while another run's removals make them fail.
LISTING_ATTEMPTS = 20
POSTGRES_CONTEXT = Path(__file__).resolve().parent / "images" / "postgres"
AZURITE_CONTAINERFILE = Path(__file__).resolve().parent / "images" / "azurite" / "Containerfile"
#: Where `make test` installs Azurite with npm: the Azurite image's build context.
AZURITE_NPM = REPO / ".cache" / "azurite"
LOCK = Path(tempfile.gettempdir()) / "coursemart-test-images.lock"

#: For the builds of a test run's own images: no intermediate image per instruction and per
#: stage (buildah's layer cache), which would stay behind unnamed once the run removes its
#: images; each build makes only its final image, which the run removes.
NO_LAYER_CACHE = {"BUILDAH_LAYERS": "false"}
#: Debian with Python, the stand-in for python:3.12-slim. Bump the suffix to rebuild it.
BASE_IMAGE = "localhost/coursemart-test/debian-python:bookworm-1"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
#: Left out of the base image: documentation and the package lists (apt-get update brings them).
BASE_TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man")
BASE_TRIM += ("usr/share/locale", "usr/share/info")
#: Certificate authorities of the machine (e.g. an HTTPS proxy's), trusted inside the base image.
HOST_CA = Path("/usr/local/share/ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def containers_conf() -> str:
    """The settings podman needs here: runc and cgroupfs (crun refuses a hybrid cgroup layout), no
    raised open-file limit (not permitted), events and logs in files (no systemd, no journal)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limit = "" if nofile == resource.RLIM_INFINITY else f"nofile={nofile}:{nofile}"
    ulimits = ", ".join(f'"{u}"' for u in (limit, "nproc=32768:32768") if u)
    return (
        "[containers]\n"
        f"default_ulimits = [{ulimits}]\n"
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        "[network]\n"
        'network_backend = "netavark"\n'
    )


@dataclass
class Podman:
    """The podman command with this machine's settings, for the tests' subprocesses."""

    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 600, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(["podman", *args], env=self.env, check=check, timeout=timeout, cwd=cwd)

    def image_exists(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0

    def inspect(self, name: str, template: str, *, kind: str = "container") -> str:
        return self(kind, "inspect", "--format", template, name).stdout.strip()

    def images_once_named(self, names: Sequence[str]) -> list[str]:
        """Every image, named or not, that has ever been called one of ``names`` (podman keeps
        each image's earlier names): what builds under those names left behind."""
        listed = self.all_images()
        wanted = {name for name in names if name}
        return [image["Id"][:12] for image in listed if wanted & set(image.get("History") or [])]

    def all_images(self) -> list[dict[str, Any]]:
        """Every image in podman's storage. Another test run removing one of its images while
        podman lists them fails the listing ("image not known"): it is listed again."""
        for _ in range(LISTING_ATTEMPTS):
            listing = self("images", "--all", "--format", "json", check=False)
            if listing.returncode == 0:
                found: list[dict[str, Any]] = json.loads(listing.stdout or "[]")
                return found
            if "image not known" not in listing.stderr:
                break
            time.sleep(0.5)
        raise CommandFailed(f"podman images --all exited {listing.returncode}:\n{listing.stderr}")

    def remove_images(self, names: Sequence[str]) -> None:
        """Remove the images built under ``names`` (not just their tags: an untagged image
        stays in podman's storage as an unnamed one)."""
        for image in self.images_once_named(names):
            self("rmi", image, check=False)


class CommandFailed(Exception):
    """A command exited non-zero; the message holds its output."""


def run(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command``, capturing its output; ``check`` turns a failure into ``CommandFailed``."""
    result = subprocess.run(
        list(command), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise CommandFailed(f"{' '.join(command)} exited {result.returncode}:\n{output}")
    return result


def podman() -> Podman | str:
    """podman set up for this machine, or why it cannot be had."""
    if shutil.which("podman") is None:
        return "podman is not installed (`make test` installs Debian's podman, as root)"
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    conf.write_text(containers_conf(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSEMART_", "POSTGRES_"))}
    env |= {"CONTAINERS_CONF": str(conf), "BUILDAH_FORMAT": "docker"}
    engine = Podman(env)
    info = engine("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    if info.returncode != 0:
        return f"podman does not run here: {(info.stderr.strip().splitlines() or ['?'])[-1]}"
    return engine


def podman_compose() -> str | None:
    """podman-compose from this Python's environment (the dev extra), else from PATH."""
    beside = Path(sys.executable).parent / "podman-compose"
    return str(beside) if beside.exists() else shutil.which("podman-compose")


@contextmanager
def images_lock() -> Iterator[None]:
    """One image build at a time on this machine."""
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def debian_mirror(sources: Sequence[Path] = ()) -> str:
    """The Debian mirror this machine's apt uses (deb822 ``URIs:`` or a ``deb`` line)."""
    paths = sources or [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        for uri in re.findall(r"^(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE):
            if re.search(r"/debian/?$", uri):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def base_image(engine: Podman) -> str | None:
    """Build the Debian-with-Python base image unless it exists; None, or why it cannot be."""
    if engine.image_exists(BASE_IMAGE):
        return None
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        return "building the base image needs root and debootstrap (`make test` installs it)"
    with tempfile.TemporaryDirectory(prefix="coursemart-rootfs-", dir="/var/tmp") as folder:
        rootfs = Path(folder) / "rootfs"
        run(
            ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm"]
            + [str(rootfs), debian_mirror()],
            timeout=900,
        )
        for trimmed in BASE_TRIM:
            shutil.rmtree(rootfs / trimmed, ignore_errors=True)
        for certificate in HOST_CA.glob("*.crt"):
            shutil.copy(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
        run(["chroot", str(rootfs), "update-ca-certificates"])
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        imported = subprocess.run(
            ["podman", "import", "--change", f"ENV PATH={path}", "-", BASE_IMAGE],
            stdin=tar.stdout,
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        tar.wait()
        if imported.returncode != 0:
            raise CommandFailed(f"podman import failed: {imported.stderr[-2000:]}")
    return None


def postgres_image(engine: Podman) -> str:
    """A PostgreSQL image from Debian's packages, named by a digest of what it is built from."""
    digest = hashlib.sha256(BASE_IMAGE.encode())
    for path in sorted(POSTGRES_CONTEXT.iterdir()):
        digest.update(path.read_bytes())
    name = f"localhost/coursemart-test/postgres:{digest.hexdigest()[:12]}"
    if not engine.image_exists(name):
        engine("build", "--build-arg", f"BASE={BASE_IMAGE}", "-t", name, str(POSTGRES_CONTEXT))
    return name


def azurite_image(engine: Podman) -> str | None:
    """Debian's Node.js with the Azurite of .cache/azurite; None when Azurite is not there."""
    package = AZURITE_NPM / "node_modules" / "azurite" / "package.json"
    if not package.exists():
        return None
    digest = hashlib.sha256(BASE_IMAGE.encode() + AZURITE_CONTAINERFILE.read_bytes())
    digest.update(package.read_bytes())
    name = f"localhost/coursemart-test/azurite:{digest.hexdigest()[:12]}"
    if not engine.image_exists(name):
        build = ["build", "--build-arg", f"BASE={BASE_IMAGE}", "-t", name]
        engine(*build, "-f", str(AZURITE_CONTAINERFILE), str(AZURITE_NPM))
    return name
