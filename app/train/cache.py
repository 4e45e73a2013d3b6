"""Decoded images on disk: written once, reused by every later run that needs the same pixels.

One entry per data folder and pixel setting, a directory in the cache dir:

    <cache dir>/<folder>-<H>x<W>x<C>-<resize>-<key>/
        images.npy    uint8 (n, H, W, C), row i = the folder's i-th image file (sorted)
        crc32.npy     uint32 (n,), the CRC-32 of every row as written
        header.json   key, shape, unreadable files, digests of the rest and of itself

The key is a digest of everything that changes a pixel: every file's path and content
digest, the target shape, the resize mode, the decoder's version and Pillow's. An entry
appears by one atomic rename of a complete directory, so an entry that exists was
written to the end; on opening, its header, sizes and a sample of rows are checked
against the digests, and anything that does not match is rebuilt, never trusted.
Training reads rows through a read-only memory map: the kernel's page cache holds them,
not the process, and gives the memory back when it is needed elsewhere.

TF-free. Building (parallel decoding, resumable) is app/train/cache_build.py.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.train.decode import Pixels
from app.train.errors import UserError

FORMAT = 1
IMAGES, CRC, HEADER = "images.npy", "crc32.npy", "header.json"
LOCK_NAME = ".lock"
SAMPLED_ROWS = 32
# https://bford.info/cachedir/: backup tools (tar --exclude-caches, borg, restic) skip it.
CACHEDIR_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# trainbox: decoded images; safe to delete.\n"
LOCK_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class Damaged(Exception):
    """An entry on disk that must not be used; the message says what did not match."""


@dataclass(frozen=True)
class Source:
    """The files one entry decodes: one data folder's images, sorted, with content digests."""

    folder: str  # relative to the data directory, e.g. "photos/train"
    paths: tuple[Path, ...]
    relative: tuple[str, ...]  # each path relative to the data directory
    digests: tuple[str, ...]  # sha256 of each file's bytes

    def __len__(self) -> int:
        return len(self.paths)

    def key(self, pixels: Pixels) -> str:
        described = {
            "format": FORMAT,
            **pixels.key_fields(),
            "files": [[name, digest] for name, digest in zip(self.relative, self.digests, strict=True)],
        }
        return hashlib.sha256(json.dumps(described, separators=(",", ":")).encode()).hexdigest()

    def entry_name(self, pixels: Pixels, key: str) -> str:
        slug = "".join(c if c.isalnum() or c in "._" else "-" for c in self.folder.strip("/")) or "data"
        return f"{slug}-{pixels.describe()}-{key[:16]}"


@dataclass
class Entry:
    """A complete, checked entry, opened read-only."""

    path: Path
    images: np.ndarray  # read-only memory map, (n, H, W, C) uint8
    unreadable: dict[int, str]  # row -> why that file could not be decoded

    @property
    def nbytes(self) -> int:
        return int(self.images.nbytes)


def header_digest(header: dict) -> str:
    body = {k: v for k, v in header.items() if k != "header_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def row_crc(images: np.ndarray, row: int) -> int:
    return zlib.crc32(np.ascontiguousarray(images[row]).data)


def sampled_rows(count: int, below: int | None = None) -> list[int]:
    """Rows spread evenly over [0, below or count), first and last included."""
    end = count if below is None else below
    if end <= 0:
        return []
    return sorted({round(i) for i in np.linspace(0, end - 1, min(SAMPLED_ROWS, end))})


def check_rows(images: np.ndarray, crcs: np.ndarray, rows: list[int]) -> None:
    for row in rows:
        if row_crc(images, row) != int(crcs[row]):
            raise Damaged(f"row {row} does not match its CRC-32")


def read_header(path: Path) -> dict:
    try:
        header = json.loads((path / HEADER).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Damaged(f"{HEADER} unreadable ({type(error).__name__})") from None
    if not isinstance(header, dict) or header.get("header_sha256") != header_digest(header):
        raise Damaged(f"{HEADER} does not match its own digest")
    return header


def open_entry(path: Path, key: str, pixels: Pixels, count: int) -> Entry:
    """The entry at `path`, checked against what the caller expects; Damaged otherwise."""
    header = read_header(path)
    if header.get("format") != FORMAT or header.get("key") != key:
        raise Damaged("written for other files or settings")
    expected = (count, *pixels.shape)
    try:
        images = np.load(path / IMAGES, mmap_mode="r")
        crcs = np.load(path / CRC)
    except (OSError, ValueError, EOFError) as error:
        raise Damaged(f"cannot map the arrays ({type(error).__name__}: {error})") from None
    if images.shape != expected or images.dtype != np.uint8:
        raise Damaged(f"images are {images.shape} {images.dtype}, expected {expected} uint8")
    if images.offset + images.nbytes != (path / IMAGES).stat().st_size:
        raise Damaged("images file has the wrong size")
    if crcs.shape != (count,) or hashlib.sha256(crcs.tobytes()).hexdigest() != header.get("crc_sha256"):
        raise Damaged(f"{CRC} does not match the header")
    check_rows(images, crcs, sampled_rows(count))
    unreadable = {int(row): reason for row, reason in header.get("unreadable", {}).items()}
    with contextlib.suppress(OSError):
        os.utime(path / HEADER)  # last use, for whoever tidies the cache by age
    return Entry(path, images, unreadable)


def write_header(path: Path, header: dict) -> None:
    header = {**header, "header_sha256": header_digest(header)}
    write_atomic(path / HEADER, json.dumps(header, indent=1, sort_keys=True).encode("utf-8"))


def write_atomic(path: Path, content: bytes) -> None:
    # A name of this process's own: two workers may write the same file at once (the first
    # run of a --workers job creating the cache directory's CACHEDIR.TAG).
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_damaged(path: Path, reason: str) -> None:
    print(f"cache: {path.name} is damaged ({reason}): rebuilding it", flush=True)
    # Renamed away first: a reader that maps the old files keeps them until it is done.
    trash = path.with_name(f".{path.name}.damaged-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


# --- the cache directory: created, tagged, locked -------------------------------------


def prepare_dir(cache_dir: Path) -> None:
    """The cache dir exists, is writable, and carries a CACHEDIR.TAG; else one-line error."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tag = cache_dir / "CACHEDIR.TAG"
        if not tag.exists():
            write_atomic(tag, CACHEDIR_TAG.encode())
    except OSError as error:
        raise UserError(
            f"cache directory {cache_dir} is not writable ({error.strerror or error}): "
            "choose another with --cache-dir"
        ) from None


def _holder(lock_path: Path) -> str:
    try:
        facts = json.loads(lock_path.read_text(encoding="utf-8") or "{}")
        return f"process {facts['pid']} on {facts['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def writer_lock(cache_dir: Path) -> Iterator[bool]:
    """One writer at a time in a cache dir (flock; released by the kernel when the writer dies).

    Yields True when held. A file system without locks (some cluster mounts) yields False:
    the caller then writes under a name of its own, and the atomic rename still makes a
    concurrent duplicate harmless.
    """
    lock_path = cache_dir / LOCK_NAME
    with open(lock_path, "a+b") as handle:
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(
                    f"cache: waiting for {_holder(lock_path)}, which is writing to {cache_dir} ...",
                    flush=True,
                )
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError as error:
            if error.errno not in LOCK_UNSUPPORTED:
                raise
            yield False
            return
        facts = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        handle.truncate(0)
        handle.write(json.dumps(facts).encode())
        handle.flush()
        yield True
