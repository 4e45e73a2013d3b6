"""Writing one cache entry: every image decoded once, in parallel, resumable after a kill.

The entry is written under a hidden partial name in the cache dir. Worker processes (one
per CPU the container may use) decode chunks of files with Pillow and write their rows
straight into the partial images file; the parent only collects each chunk's CRCs and
unreadable files, in order. Every few seconds the written rows are flushed to disk and
the progress is recorded (rows first, then their CRCs, then the count: each atomic), so a
run killed half-way continues where it was, after checking a sample of what it finds.
At the end: header, fsync, one rename to the entry's name.

Workers come from a fork server that imports only this module (NumPy and Pillow, never
TensorFlow), so they are small and start the same way whatever the parent has loaded.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import signal
import time
import zlib
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app import settings
from app.progress import progress
from app.train import cache, threads
from app.train.decode import Pixels, Unreadable, decode, unreadable_line
from app.train.errors import UserError

STATE = "state.json"
CHUNK_BYTES = 4 << 20  # rows per task: about this much output, so tiny images batch up
MAX_CHUNK = 512
# ... and at most this share of a folder, so the progress lines (every 10%) have something
# to report: a folder of a few hundred large photos of small target size was one task.
MAX_CHUNK_SHARE = 0.02
# Progress is recorded every CHECKPOINT_S seconds and every CHECKPOINT_SHARE of the rows,
# whichever comes first: a kill loses at most that much decoding.
CHECKPOINT_S = 5.0
CHECKPOINT_SHARE = 0.05
# Below this much to read, decoding in this process beats starting a pool (~0.5 s in a
# container, where every process imports NumPy and Pillow anew): the digits are 1 MB.
IN_PROCESS_BELOW_BYTES = 8 << 20
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class Progress:
    """What the partial entry holds: rows [0, done) written and flushed, their CRCs."""

    key: str
    done: int
    crcs: np.ndarray
    unreadable: dict[int, str] = field(default_factory=dict)


def decode_rows(images_path: str, offset: int, start: int, paths: list[str], pixels: Pixels):
    """Decode paths into rows start.. of the images file; (CRCs, {row: why unreadable})."""
    rows, crcs, unreadable = [], [], {}
    blank = np.zeros(pixels.shape, dtype=np.uint8)
    for row, path in enumerate(paths, start):
        try:
            image = decode(path, pixels)
        except Unreadable as error:
            image = blank
            unreadable[row] = str(error)
        rows.append(image.tobytes())
        crcs.append(zlib.crc32(rows[-1]))
    descriptor = os.open(images_path, os.O_WRONLY)
    try:
        os.pwrite(descriptor, b"".join(rows), offset + start * pixels.item_bytes)
    finally:
        os.close(descriptor)
    return crcs, unreadable


def _quiet_worker() -> None:
    # Ctrl-C reaches the whole process group: the parent decides, the workers just stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def decoding_processes() -> int:
    """One per CPU this process may use: the cgroup quota, and the CPU set (Slurm binds one)."""
    cores = len(os.sched_getaffinity(0))
    return threads.threads_for(threads.cgroup_cpu_limit(), cores) or cores


class _InProcess(Executor):
    """The Executor interface, run in the caller: for a handful of files."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return _InProcess()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_quiet_worker)


def oom_kills(root: Path = threads.CGROUP) -> int | None:
    """How many processes the kernel killed for memory in this container (cgroup v2 or v1)."""
    for path in (root / "memory.events", root / "memory" / "memory.oom_control"):
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def rows_per_chunk(pixels: Pixels, count: int) -> int:
    return max(1, min(MAX_CHUNK, CHUNK_BYTES // pixels.item_bytes, int(count * MAX_CHUNK_SHARE)))


# --- the partial entry ------------------------------------------------------------------


def read_progress(partial: Path, key: str, count: int, pixels: Pixels) -> Progress | None:
    """Progress recorded by an earlier writer of the same entry, checked; None to start over."""
    try:
        state = json.loads((partial / STATE).read_text(encoding="utf-8"))
        crcs = np.load(partial / cache.CRC)
        images = np.load(partial / cache.IMAGES, mmap_mode="r")
        done = int(state["done"])
        if state.get("key") != key or images.shape != (count, *pixels.shape) or not 0 <= done <= len(crcs):
            return None
        cache.check_rows(images, crcs, cache.sampled_rows(count, below=done))
    except (OSError, ValueError, EOFError, KeyError, TypeError, cache.Damaged):
        return None
    unreadable = {int(row): reason for row, reason in state.get("unreadable", {}).items()}
    full = np.zeros(count, dtype=np.uint32)
    full[:done] = crcs[:done]
    return Progress(key, done, full, unreadable)


def start_partial(partial: Path, key: str, count: int, pixels: Pixels) -> Progress:
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    np.lib.format.open_memmap(
        partial / cache.IMAGES, mode="w+", dtype=np.uint8, shape=(count, *pixels.shape)
    )._mmap.close()  # sparse until written
    return Progress(key, 0, np.zeros(count, dtype=np.uint32))


def save_progress(partial: Path, images_fd: int, state: Progress) -> None:
    os.fsync(images_fd)  # the rows before the record that says they are there
    cache.write_atomic(partial / cache.CRC, _npy_bytes(state.crcs[: state.done]))
    record = {
        "key": state.key,
        "done": state.done,
        "unreadable": {str(row): why for row, why in sorted(state.unreadable.items())},
    }
    cache.write_atomic(partial / STATE, json.dumps(record).encode("utf-8"))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def finish(partial: Path, final: Path, state: Progress, source: cache.Source, pixels: Pixels) -> None:
    cache.write_atomic(partial / cache.CRC, _npy_bytes(state.crcs))
    header = {
        "format": cache.FORMAT,
        "key": state.key,
        "folder": source.folder,
        "count": len(source),
        **pixels.key_fields(),
        "bytes": len(source) * pixels.item_bytes,
        "crc_sha256": hashlib.sha256(state.crcs.tobytes()).hexdigest(),
        "unreadable": {str(row): why for row, why in sorted(state.unreadable.items())},
        "unreadable_files": {source.relative[row]: why for row, why in sorted(state.unreadable.items())},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    cache.write_header(partial, header)
    (partial / STATE).unlink(missing_ok=True)
    cache.fsync_dir(partial)
    try:
        os.replace(partial, final)
    except OSError as error:
        # Without a lock another writer may have finished the same entry first: keep theirs.
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)
    cache.fsync_dir(final.parent)


# --- writing ----------------------------------------------------------------------------


def build(source: cache.Source, pixels: Pixels, cache_dir: Path, skip_unreadable: bool) -> Path:
    """Decode the source into its entry, resuming a partial one; returns the entry's path."""
    key = source.key(pixels)
    final = cache_dir / source.entry_name(pixels, key)
    cache.prepare_dir(cache_dir)
    try:
        with cache.writer_lock(cache_dir) as locked:
            if final.is_dir():
                return final  # written by whoever held the lock before us
            partial = cache_dir / f".{final.name}.partial"
            if not locked:  # no locks on this file system: a partial of our own
                partial = partial.with_name(f"{partial.name}-{os.getpid()}")
            state = read_progress(partial, key, len(source), pixels) if locked else None
            if state is None:
                state = start_partial(partial, key, len(source), pixels)
            elif state.done:
                print(
                    f"cache: resuming {source.folder} at image {state.done:,} of {len(source):,}", flush=True
                )
            _check_free_space(cache_dir, (len(source) - state.done) * pixels.item_bytes)
            started, first = time.monotonic(), state.done
            _decode_all(partial, state, source, pixels, skip_unreadable)
            finish(partial, final, state, source, pixels)
            seconds = time.monotonic() - started
            print(
                f"{settings.CACHE_WRITTEN}{source.folder} ({len(source):,} images, "
                f"{_size(len(source) * pixels.item_bytes)}) in {seconds:.1f} s "
                f"({(len(source) - first) / max(seconds, 1e-9):.0f} images/s): {final}",
                flush=True,
            )
    except PermissionError as error:
        raise UserError(
            f"cache directory {cache_dir} is not writable ({error.strerror}): choose another with --cache-dir"
        ) from None
    except OSError as error:
        if error.errno in DISK_FULL:
            raise UserError(
                f"the disk holding the cache directory {cache_dir} is full: free space "
                "(or choose another --cache-dir), then run again"
            ) from None
        if error.errno == errno.EROFS:
            raise UserError(
                f"cache directory {cache_dir} is on a read-only file system: choose another with --cache-dir"
            ) from None
        raise
    return final


def _decode_all(partial: Path, state: Progress, source: cache.Source, pixels: Pixels, skip: bool) -> None:
    images_path = partial / cache.IMAGES
    offset = np.load(images_path, mmap_mode="r").offset
    remaining = len(source) - state.done
    to_read = sum(path.stat().st_size for path in source.paths[state.done :])
    workers = decoding_processes() if to_read >= IN_PROCESS_BELOW_BYTES else 1
    print(
        f"{settings.CACHE_DECODING}{remaining:,} images of {source.folder} into {partial.parent} "
        f"({_size(remaining * pixels.item_bytes)}, {workers} process{'es' if workers > 1 else ''})",
        flush=True,
    )
    chunk = rows_per_chunk(pixels, len(source))
    descriptor = os.open(images_path, os.O_WRONLY)
    kills_before = oom_kills() or 0
    executor = _executor(workers)
    try:
        pending: deque = deque()
        next_row, saved_at, saved_rows = state.done, time.monotonic(), state.done
        every_rows = max(1, int(len(source) * CHECKPOINT_SHARE))
        with progress(remaining, f"decoding {source.folder}", "images") as bar:
            while next_row < len(source) or pending:
                while next_row < len(source) and len(pending) < 3 * workers:
                    stop = min(next_row + chunk, len(source))
                    names = [str(p) for p in source.paths[next_row:stop]]
                    pending.append(
                        (
                            next_row,
                            executor.submit(decode_rows, str(images_path), offset, next_row, names, pixels),
                        )
                    )
                    next_row = stop
                start, future = pending.popleft()
                crcs, unreadable = future.result()
                state.crcs[start : start + len(crcs)] = crcs
                state.unreadable.update(unreadable)
                state.done = start + len(crcs)
                bar.advance(len(crcs))
                if unreadable and not skip:
                    save_progress(partial, descriptor, state)
                    row = min(unreadable)
                    raise UserError(unreadable_line(source.paths[row], unreadable[row]))
                if time.monotonic() - saved_at > CHECKPOINT_S or state.done - saved_rows >= every_rows:
                    save_progress(partial, descriptor, state)
                    saved_at, saved_rows = time.monotonic(), state.done
        os.fsync(descriptor)
    except OSError as error:
        if error.errno in DISK_FULL:
            _save_quietly(partial, descriptor, state)
            raise UserError(
                f"the disk holding the cache directory {partial.parent} is full after "
                f"{state.done:,} of {len(source):,} images: free space (or choose another --cache-dir), "
                "then run again; what is decoded is kept"
            ) from None
        raise
    except BrokenProcessPool:
        _save_quietly(partial, descriptor, state)
        if (oom_kills() or 0) > kills_before:
            raise UserError(
                "a process decoding photos into the cache was killed for lack of memory (each holds "
                "one full-size photo while it decodes it): raise --memory or lower --cpus (one process "
                "per CPU), then run again: the images decoded so far are kept"
            ) from None
        raise
    except BaseException:  # interrupted, or a worker died: keep what is done for the next run
        _save_quietly(partial, descriptor, state)
        raise
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        os.close(descriptor)


def _save_quietly(partial: Path, descriptor: int, state: Progress) -> None:
    with contextlib.suppress(OSError):
        save_progress(partial, descriptor, state)


def _check_free_space(cache_dir: Path, needed: int) -> None:
    stats = os.statvfs(cache_dir)
    free = stats.f_bavail * stats.f_frsize
    if needed > free:
        raise UserError(
            f"the cache directory {cache_dir} has {_size(free)} free, the decoded images need "
            f"{_size(needed)}: free space or choose another with --cache-dir"
        )


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"
