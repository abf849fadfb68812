"""Where a lake lives: a root on a filesystem, local or fsspec, and the names below it."""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import fsspec
import pyarrow.fs as pafs
from fsspec.implementations.local import LocalFileSystem

from coursemart.errors import LakeError, UnwritableLakeError
from coursemart.masking import mask_url

COURSES_DIR: Final = "courses"
REJECTED_DIR: Final = "_rejected"
SUCCESS: Final = "_SUCCESS"
BATCH_PREFIX: Final = "batch_id="
LOAD_PREFIX: Final = "load_id="
DIMENSIONS: Final = ("categories", "levels")


def new_id(now: datetime | None = None) -> str:
    """A batch or load id that sorts by time: ``20261127T102455.123456Z-3f2a``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Store:
    """A lake root on some filesystem; every path below it is taken literally (no globbing)."""

    url: str
    fs: fsspec.AbstractFileSystem
    root: str
    arrow_fs: pafs.FileSystem = field(repr=False)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @property
    def display(self) -> str:
        """The lake's URL, safe to print (credentials masked)."""
        return mask_url(self.url)

    def exists(self) -> bool:
        """Whether the lake's root folder exists."""
        return bool(self.fs.exists(self.root))

    def path(self, *parts: str) -> str:
        """Join ``parts`` below the lake root."""
        return "/".join([self.root.rstrip("/"), *parts])

    def batch_dir(self, batch_id: str) -> str:
        return self.path(COURSES_DIR, f"{BATCH_PREFIX}{batch_id}")

    def dimension_path(self, name: str) -> str:
        return self.path(f"{name}.csv")

    def rejected_dir(self, load_id: str) -> str:
        return self.path(REJECTED_DIR, f"{LOAD_PREFIX}{load_id}")


def connect(
    url: str, *, create: bool = False
) -> tuple[fsspec.AbstractFileSystem, str, pafs.FileSystem]:
    """The filesystem, root and Arrow filesystem of the lake at ``url``; ``create`` makes sure
    it exists and is writable."""
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise LakeError(f"cannot open lake {mask_url(url)!r}: {exc}") from exc
    arrow_fs: pafs.FileSystem
    if isinstance(fs, LocalFileSystem):
        arrow_fs = pafs.LocalFileSystem()
        if create:
            _prepare_local_root(url, root)
    else:
        arrow_fs = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
        if create:
            fs.makedirs(root, exist_ok=True)
    return fs, root, arrow_fs


def _prepare_local_root(url: str, root: str) -> None:
    if os.path.exists(root) and not os.path.isdir(root):
        raise UnwritableLakeError(f"lake path {url!r} is a file, not a folder: choose a folder")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise UnwritableLakeError(
            f"cannot create lake folder {url!r}: {exc.strerror}; choose a writable folder"
        ) from exc
    probe = os.path.join(root, f".write-probe-{uuid.uuid4().hex}")
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise UnwritableLakeError(
            f"lake folder {url!r} is not writable ({exc.strerror}): "
            "fix its permissions or choose another folder"
        ) from exc
