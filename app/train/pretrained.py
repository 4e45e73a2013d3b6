"""ImageNet weights through Keras' own download, into a cache folder fetched into once per machine.

Keras Applications fetch their weights with Keras' `get_file` into $KERAS_HOME/models/
(trainbox mounts a host folder there). While a backbone is built, that `get_file` is
wrapped, because two of its habits do not fit machines without internet:
- a file already in the cache is used as it is: Keras would download it again when its
  hash is not the published one (a file carried by hand, a re-saved one). The file is
  hashed, and the manifest says whether it is the published file;
- a download that fails is one line saying which file to put where, not a traceback.
Workers that start together download one at a time (a lock file): the file is fetched once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path

from keras.src.backend import config as keras_config
from keras.src.utils import file_utils  # the module every keras.applications builder calls

from app.train.errors import UserError

LOCK_NAME = ".trainbox-download.lock"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_folder(cache_subdir: str = "models") -> Path:
    return Path(keras_config.keras_home()).expanduser() / cache_subdir


@contextlib.contextmanager
def imagenet_cache(architecture: str, host_folder: str | None) -> Iterator[list[dict]]:
    """Within: Keras' get_file takes a cached file as it is, or downloads it once; yields the
    list of files used ({file, sha256, published, origin}), filled as the backbone loads."""
    used: list[dict] = []
    download = file_utils.get_file

    def cached_or_downloaded(fname=None, origin=None, cache_subdir="datasets", file_hash=None, **kwargs):
        folder = cache_folder(cache_subdir)
        path = folder / fname
        if not path.is_file():
            fetch(download, path, origin, file_hash, architecture, host_folder)
        published = None if file_hash is None else bool(file_utils.validate_file(str(path), file_hash))
        if published is False:
            print(
                f"warning: {path} is not the file Keras publishes for {architecture} "
                "(its hash differs): using it as it is",
                flush=True,
            )
        used.append({"file": fname, "sha256": file_sha256(path), "published": published, "origin": origin})
        return str(path)

    file_utils.get_file = cached_or_downloaded
    try:
        yield used
    finally:
        file_utils.get_file = download


def fetch(
    download, path: Path, origin: str, file_hash: str | None, architecture: str, host_folder: str | None
) -> None:
    """Download `origin` to `path` with Keras' get_file, one process at a time; one line if impossible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.parent / LOCK_NAME, "a")  # noqa: SIM115 - held until the download ends
    except OSError as error:
        raise UserError(f"Keras' cache folder {path.parent} is not writable: {error.strerror}") from None
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if path.is_file():
            return  # another worker fetched it meanwhile
        try:
            download(path.name, origin, cache_subdir=str(path.parent), file_hash=file_hash)
        except Exception as error:  # Keras raises a bare Exception for a failed fetch
            path.unlink(missing_ok=True)  # a file that failed its hash check stays behind otherwise
            where = f"{host_folder}/models/" if host_folder else f"{path.parent}/"
            # Keras says "URL fetch failure on {url}: {code} -- {reason}": the reason is enough.
            reason = " ".join(str(error).split()).rpartition(" -- ")[2][:120]
            raise UserError(
                f"ImageNet weights for {architecture} are not in Keras' cache and cannot be downloaded "
                f"({reason}): download {origin} where there is internet and put it in {where}, "
                "or copy it into the data directory and set model.weights to its path"
            ) from None
