"""Remote inputs and outputs (`s3://`, `gs://`, `hdfs://`, any fsspec URL) through local staging.

Object stores have no rename, lock or memory map: a remote output is produced in a local staging directory
and mirrored in commit order (a shard, its record, the finished stage's manifest, `teacher/LATEST` last;
docs/design.md, "Remote mirroring"). A run on a fresh machine pulls the committed shards first, so it
resumes. Credentials come from the filesystem's own environment (`AWS_ENDPOINT_URL`, ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs

from distill.storage.atomic import TEMP_MARKER, commit_file
from distill.storage.lock import LOCK_NAME
from distill.storage.shards import SHARD_PREFIX
from distill.storage.stage_dir import COMMITS_DIR, MANIFEST_NAME, PROGRESS_NAME

log = logging.getLogger(__name__)
LOCAL = pafs.LocalFileSystem()


def is_remote(path: str | os.PathLike | None) -> bool:
    text = str(path or "")
    return "://" in text and not text.startswith("file://")


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's own filesystems (S3, GCS, HDFS), else any installed fsspec implementation."""
    try:
        return pafs.FileSystem.from_uri(uri)
    except ValueError:  # pyarrow.lib.ArrowInvalid: a scheme pyarrow has no filesystem for
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def staging_dir(uri: str, root: str | os.PathLike | None = None) -> Path:
    """Local mirror of `uri`: `$DISTILL_STAGING` or `~/.cache/distill/staging`, one folder per URI."""
    base = Path(root or os.environ.get("DISTILL_STAGING") or Path.home() / ".cache" / "distill" / "staging")
    return base / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]


def _skipped(name: str) -> bool:
    return TEMP_MARKER in name or name == LOCK_NAME


def _stage_extras(stage: Path) -> list[str]:
    """A stage's other files (relative, sorted): rejects, a cache's card, plain subdirectories (`teacher_files/`)."""
    out = []
    for path in sorted(stage.rglob("*")):
        parts = path.relative_to(stage).parts
        if not path.is_file() or any(_skipped(part) for part in parts) or any(p.startswith("_") for p in parts[:-1]):
            continue
        if len(parts) > 1 or not (path.name.startswith(SHARD_PREFIX) or path.name in (MANIFEST_NAME, PROGRESS_NAME)):
            out.append("/".join(parts))
    return out


def _download(fs: pafs.FileSystem, path: str, target: Path) -> None:
    """Stream one remote file into `target` atomically (no whole-shard copy in memory)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    commit_file(target, lambda tmp: pafs.copy_files(path, str(tmp), source_filesystem=fs, destination_filesystem=LOCAL))


class RemoteMirror:
    """Keeps a local staging directory and a remote prefix in step (see the module docstring)."""

    def __init__(self, uri: str, local: str | os.PathLike) -> None:
        self.uri = uri.rstrip("/")
        self.fs, root = filesystem(self.uri)
        self.root = root.rstrip("/")
        self.local = Path(local)
        self._lock = threading.Lock()

    def _remote_files(self) -> dict[str, int]:
        """Relative path -> size of every remote file under the prefix."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        return {info.path[len(self.root) + 1 :]: info.size for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File}

    def _read(self, relative: str) -> bytes:
        with self.fs.open_input_stream(f"{self.root}/{relative}") as stream:
            return stream.read()

    def _upload(self, relative: str) -> None:
        pafs.copy_files(str(self.local / relative), f"{self.root}/{relative}", source_filesystem=LOCAL,
                        destination_filesystem=self.fs)

    def _delete(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(f"{self.root}/{relative}")

    def pull(self) -> int:
        """Copy what the remote has committed (a shard only with its record) into staging; returns the files fetched."""
        remote = self._remote_files()
        split = {relative: relative.rpartition("/") for relative in remote}
        committed = {parent[: -len(COMMITS_DIR)] + name.removesuffix(".json") for parent, _, name in split.values()
                     if parent.endswith(COMMITS_DIR) and name.endswith(".json")}
        fetched = 0
        for relative, size in sorted(remote.items()):
            parent, _, name = split[relative]
            is_shard = name.startswith(SHARD_PREFIX) and not parent.endswith(COMMITS_DIR)  # records are part-*.json
            target = self.local / relative
            if _skipped(name) or (is_shard and (relative not in committed
                                                or target.exists() and target.stat().st_size == size)):
                continue  # uncommitted; or here already, and checked against its record by the stage anyway
            _download(self.fs, f"{self.root}/{relative}", target)
            fetched += 1
        if fetched:
            log.info("pulled %d committed file(s) from %s into %s", fetched, self.uri, self.local)
        return fetched

    def push(self) -> int:
        """Upload committed local work in commit order; returns the number of files uploaded."""
        with self._lock:
            if not self.local.exists():
                return 0
            remote, published = self._remote_files(), set()
            stages = sorted({p.parent.parent for p in self.local.rglob(f"{COMMITS_DIR}/*.json")}
                            | {p.parent for name in (MANIFEST_NAME, PROGRESS_NAME) for p in self.local.rglob(name)})
            uploaded = sum(self._push_stage(stage, remote, published) for stage in stages)
            for pointer in sorted(self.local.rglob("LATEST")):  # last, and only once the cache it names is published
                if pointer.parent / pointer.read_text().strip() in published:
                    self._upload(pointer.relative_to(self.local).as_posix())
                    uploaded += 1
            if uploaded:
                log.info("pushed %d file(s) to %s", uploaded, self.uri)
            return uploaded

    def _push_stage(self, stage: Path, remote: dict[str, int], published: set[Path]) -> int:
        """Progress marker, each shard before its record, then (once finished) the other files and the manifest."""
        rel = stage.relative_to(self.local).as_posix()
        prefix = "" if rel == "." else rel + "/"
        manifest = (stage / MANIFEST_NAME).read_bytes() if (stage / MANIFEST_NAME).exists() else None  # snapshot first
        if manifest is None and prefix + MANIFEST_NAME in remote:
            self._delete(prefix + MANIFEST_NAME)  # the stage is being redone: withdraw the old marker first
        if (stage / PROGRESS_NAME).exists():
            self._upload(prefix + PROGRESS_NAME)
        uploaded = 0
        for record_path in sorted((stage / COMMITS_DIR).glob("*.json")):
            shard, record_rel = record_path.stem, f"{prefix}{COMMITS_DIR}/{record_path.name}"
            record = record_path.read_bytes()
            shard_file = stage / shard
            if not shard_file.exists() or shard_file.stat().st_size != json.loads(record)["bytes"]:
                continue  # being rewritten locally; its new record comes with it
            if record_rel in remote and self._read(record_rel) == record:
                continue
            self._delete(record_rel)  # a replaced shard must not be vouched for by its old record
            self._upload(prefix + shard)
            self._upload(record_rel)
            uploaded += 2
        if manifest is None:
            return uploaded
        listed = {s["file"] for s in json.loads(manifest)["shards"]}
        for relative in remote:
            name = relative[len(prefix):]
            if relative.startswith(prefix) and "/" not in name and name.startswith(SHARD_PREFIX) and name not in listed:
                self._delete(relative)  # stray shard of an older plan
        for extra in _stage_extras(stage):
            self._upload(prefix + extra)  # rejects, the card, teacher_files/, ...
            uploaded += 1
        if (prefix + MANIFEST_NAME) not in remote or self._read(prefix + MANIFEST_NAME) != manifest:
            with self.fs.open_output_stream(f"{self.root}/{prefix}{MANIFEST_NAME}") as out:
                out.write(manifest)
            uploaded += 1
        published.add(stage)
        if not (stage / PROGRESS_NAME).exists():
            self._delete(prefix + PROGRESS_NAME)
        return uploaded

    def _push_or_warn(self, message: str) -> None:
        try:
            self.push()
        except Exception as err:  # a transient remote error must not kill the run; the next push retries
            log.warning(message, self.uri, err)

    @contextlib.contextmanager
    def syncing(self, every_seconds: float = 30.0) -> Iterator[RemoteMirror]:
        """Push every `every_seconds` while the body runs (a killed container loses at most that), and at the end."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every_seconds):
                self._push_or_warn("push to %s failed (%s); retrying later")

        thread = threading.Thread(target=loop, name="remote-sync", daemon=True)
        thread.start()
        succeeded = False
        try:
            yield self
            succeeded = True
        finally:
            stop.set()
            thread.join()
            if not succeeded:
                self._push_or_warn("could not push finished work to %s (%s)")  # keep what finished before
        self.push()


def local_input(uri: str | os.PathLike, staging_root: str | os.PathLike | None = None) -> Path | str:
    """A remote input file (or directory) copied once into staging; local paths and `hf://` names pass through."""
    if str(uri).startswith("hf://"):
        return str(uri)
    if not is_remote(uri):
        return Path(uri)
    fs, path = filesystem(str(uri))
    target = staging_dir(str(uri), staging_root) / "input" / Path(path).name
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{uri}: input not found")
    if info.type != pafs.FileType.File:
        pafs.copy_files(path, str(target), source_filesystem=fs, destination_filesystem=LOCAL)
    elif target.exists() and target.stat().st_size == info.size:
        return target
    else:
        _download(fs, path, target)
    log.info("copied input %s to %s", uri, target)
    return target


@contextlib.contextmanager
def staged_output(uri: str | os.PathLike, staging_root: str | os.PathLike | None = None,
                  sync_seconds: float = 30.0) -> Iterator[Path]:
    """A local directory standing for output `uri` while the body runs: pulled first, pushed during and after."""
    if not is_remote(uri):
        yield Path(uri)
        return
    with _pulled_mirror(str(uri), staging_root).syncing(sync_seconds) as mirror:
        yield mirror.local


def local_copy(uri: str | os.PathLike, staging_root: str | os.PathLike | None = None) -> Path:
    """A finished remote output (e.g. a teacher cache) pulled into staging for memory-mapped reads."""
    return _pulled_mirror(str(uri), staging_root).local if is_remote(uri) else Path(uri)


def _pulled_mirror(uri: str, staging_root: str | os.PathLike | None) -> RemoteMirror:
    mirror = RemoteMirror(uri, staging_dir(uri, staging_root) / "output")
    mirror.pull()
    return mirror
