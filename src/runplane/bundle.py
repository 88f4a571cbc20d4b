"""Process bundles: a deterministic zip of a folder holding ``runplane.toml``.

A process version is content-addressed, so the same folder must give the same
identity whoever packs it, on whatever machine. Two things make that hold:

- ``pack_folder`` writes a canonical archive: entries sorted, timestamps fixed
  at 1980-01-01 (the zip epoch), modes normalised the way git does (``755`` if
  any execute bit is set, else ``644``), so umask and clock do not leak in.
- ``content_hash`` does not hash the zip bytes at all but a manifest of what
  the archive holds (``path\\0sha256(data)\\0mode\\n`` per file, sorted), so an
  archive made by another zip tool with the same content has the same digest.

Archives come from outside (an HTTP upload), so every read goes through one
validating opener that refuses zip bombs (compressed size, entry count,
uncompressed total) and unsafe entries (absolute paths, ``..``, backslashes,
symlinks, device files) with ``BundleError``. ``extract`` unpacks once into a
cache keyed by digest: into a temporary directory first, then an atomic
rename, so a concurrent reader sees either nothing or the whole tree, and it
checks the extracted content against the digest before publishing it.

Standard library only: the runtime agent imports this on remote machines.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_BUNDLE_ENTRIES = 10_000
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024

MANIFEST_NAME = "runplane.toml"
ROBOT_NAME = "robot.yaml"
SKIPPED_DIR_NAMES = frozenset({"__pycache__", ".git", ".venv"})
SKIPPED_FILE_SUFFIXES = (".pyc",)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
EXECUTABLE_MODE = 0o755
REGULAR_MODE = 0o644
UNIX_CREATE_SYSTEM = 3  # "made on Unix": tells unzip tools external_attr holds st_mode

_DIGEST_PATTERN = re.compile(r"[0-9a-f]{64}")


class BundleError(ValueError):
    """The bundle is not a valid, safe process archive."""


def pack_folder(folder: Path) -> bytes:
    """Zip a process folder deterministically (sorted, fixed timestamps, normalised modes)."""
    folder = Path(folder)
    if not (folder / MANIFEST_NAME).is_file() and not (folder / ROBOT_NAME).is_file():
        raise BundleError(
            f"{folder} has no {MANIFEST_NAME} (nor a Robocorp robot's {ROBOT_NAME}): "
            "not a process folder"
        )
    files = sorted(_walk(folder), key=lambda pair: pair[0])
    if len(files) > MAX_BUNDLE_ENTRIES:
        raise BundleError(f"{folder} holds {len(files)} files; the limit is {MAX_BUNDLE_ENTRIES}")
    total = sum(path.stat().st_size for _, path in files)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise BundleError(f"{folder} holds {total} bytes; the limit is {MAX_UNCOMPRESSED_BYTES}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = UNIX_CREATE_SYSTEM
            info.external_attr = (stat.S_IFREG | _normalised_mode(path.stat().st_mode)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle is {len(data)} bytes; the limit is {MAX_BUNDLE_BYTES}")
    return data


def content_hash(zip_bytes: bytes) -> str:
    """Return the sha256 hex digest of the archive's canonical content manifest."""
    digest = hashlib.sha256()
    with _open(zip_bytes) as archive:
        for info in _file_entries(archive):
            digest.update(_manifest_line(info, _sha256_of_entry(archive, info)))
    return digest.hexdigest()


def read_manifest_text(zip_bytes: bytes) -> str:
    """Return the text of ``runplane.toml`` at the archive root."""
    text = read_texts(zip_bytes)(MANIFEST_NAME)
    if text is None:
        raise BundleError(f"bundle has no {MANIFEST_NAME} at its root")
    return text


def read_texts(zip_bytes: bytes) -> Callable[[str], str | None]:
    """A reader of the archive's small text files by path (None: no such file).

    The archive is checked once, here; each file read must be UTF-8 and at most
    ``MAX_MANIFEST_BYTES``, or BundleError.
    """
    with _open(zip_bytes):
        pass

    def read(name: str) -> str | None:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            try:
                info = archive.getinfo(name)
            except KeyError:
                return None
            if info.is_dir():
                return None
            if info.file_size > MAX_MANIFEST_BYTES:
                raise BundleError(f"{name} is larger than {MAX_MANIFEST_BYTES} bytes")
            data = b"".join(_read_chunks(archive, info))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"{name} is not valid UTF-8: {exc}") from exc

    return read


def extract(zip_bytes: bytes, cache_root: Path, digest: str) -> Path:
    """Extract the bundle once into ``cache_root/<digest>/`` and return that directory.

    ``digest`` must be ``content_hash(zip_bytes)``; the extracted content is checked
    against it before it is published, so the cache never holds a wrong tree.
    """
    if not _DIGEST_PATTERN.fullmatch(digest):
        raise BundleError(f"digest {digest!r} is not a sha256 hex digest")
    target = Path(cache_root) / digest
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=target.parent))
    try:
        actual = _extract_into(zip_bytes, staging)
        if actual != digest:
            raise BundleError(f"bundle content hash is {actual}, expected {digest}")
        _compile(staging)
        staging.chmod(EXECUTABLE_MODE)
        try:
            staging.rename(target)
        except OSError:
            # Another extractor of the same digest won the race: its tree is identical.
            if not target.is_dir():
                raise
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _compile(folder: Path) -> None:
    """Compile the bundle's Python modules once, beside them (``__pycache__``).

    The tree never changes once published, and executions may not be able to
    write there (a read-only cache, ``PYTHONDONTWRITEBYTECODE``): without this,
    every execution would compile every module it imports. A file that does not
    compile is left as it is; importing it reports the error in that execution.
    """
    import compileall  # here: only extraction needs it, and the agent imports this module

    compileall.compile_dir(folder, quiet=2, workers=1)


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    for root, dirnames, filenames in os.walk(folder):
        dirnames[:] = [name for name in dirnames if name not in SKIPPED_DIR_NAMES]
        for filename in filenames:
            if filename.endswith(SKIPPED_FILE_SUFFIXES):
                continue
            path = Path(root, filename)
            if not path.is_file():  # dangling symlink, socket, fifo
                raise BundleError(f"{path} is not a regular file")
            yield path.relative_to(folder).as_posix(), path


def _normalised_mode(mode: int) -> int:
    return EXECUTABLE_MODE if mode & 0o111 else REGULAR_MODE


def _manifest_line(info: zipfile.ZipInfo, data_sha256: str) -> bytes:
    mode = _normalised_mode(info.external_attr >> 16)
    return f"{info.filename}\0{data_sha256}\0{mode:o}\n".encode()


def _file_entries(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)


def _sha256_of_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    for chunk in _read_chunks(archive, info):
        digest.update(chunk)
    return digest.hexdigest()


def _read_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    # zipfile stops at the declared file_size and checks the CRC, and _open has
    # bounded the declared sizes, so a lying header cannot inflate past the limit.
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(READ_CHUNK_BYTES):
                yield chunk
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise BundleError(f"cannot read {info.filename!r} from bundle: {exc}") from exc


def _extract_into(zip_bytes: bytes, staging: Path) -> str:
    digest = hashlib.sha256()
    with _open(zip_bytes) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            destination = staging.joinpath(*PurePosixPath(info.filename).parts)
            if info.is_dir():
                destination.mkdir(mode=EXECUTABLE_MODE, parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(mode=EXECUTABLE_MODE, parents=True, exist_ok=True)
            entry_digest = hashlib.sha256()
            with destination.open("xb") as out:
                for chunk in _read_chunks(archive, info):
                    entry_digest.update(chunk)
                    out.write(chunk)
            destination.chmod(_normalised_mode(info.external_attr >> 16))
            # Sorted by name, like the manifest, so the digest builds up in one pass.
            digest.update(_manifest_line(info, entry_digest.hexdigest()))
    return digest.hexdigest()


@contextmanager
def _open(zip_bytes: bytes) -> Iterator[zipfile.ZipFile]:
    """Open an archive after checking every limit and every entry name."""
    if len(zip_bytes) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle is {len(zip_bytes)} bytes; the limit is {MAX_BUNDLE_BYTES}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise BundleError(f"bundle is not a valid zip archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_BUNDLE_ENTRIES:
            raise BundleError(f"bundle has {len(infos)} entries; the limit is {MAX_BUNDLE_ENTRIES}")
        total = sum(info.file_size for info in infos)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise BundleError(
                f"bundle expands to {total} bytes; the limit is {MAX_UNCOMPRESSED_BYTES}"
            )
        seen: set[str] = set()
        parents: set[str] = set()
        for info in infos:
            _check_entry(info)
            name = info.filename.rstrip("/")
            if name in seen:
                raise BundleError(f"bundle entry {name!r} appears more than once")
            seen.add(name)
            parents.update(str(parent) for parent in PurePosixPath(name).parents)
        files = {info.filename for info in infos if not info.is_dir()}
        if clash := sorted(files & parents):
            raise BundleError(f"bundle entry {clash[0]!r} is both a file and a directory")
        yield archive


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if not name or "\\" in name or "\0" in name or name.startswith("/"):
        raise BundleError(f"bundle entry {name!r} has an unsafe path")
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BundleError(f"bundle entry {name!r} has an unsafe path")
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        raise BundleError(f"bundle entry {name!r} is a symlink; symlinks are not allowed")
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise BundleError(f"bundle entry {name!r} is not a regular file or directory")
