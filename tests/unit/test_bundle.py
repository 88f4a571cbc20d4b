from __future__ import annotations

import io
import os
import stat
import struct
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from runplane import bundle
from runplane.bundle import BundleError, content_hash, extract, pack_folder, read_manifest_text

MANIFEST = '[process]\nname = "invoice-bot"\nentrypoint = "bot:main"\n'


def make_folder(root: Path) -> Path:
    folder = root / "invoice-bot"
    (folder / "lib").mkdir(parents=True)
    (folder / "runplane.toml").write_text(MANIFEST)
    (folder / "bot.py").write_text("def main():\n    return {}\n")
    (folder / "lib" / "helpers.py").write_text("X = 1\n")
    run = folder / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    return folder


def zip_of(entries: list[tuple[str, bytes, int]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 6, 7, 8, 10))
            info.external_attr = mode << 16
            info.create_system = 3
            info.compress_type = compression
            archive.writestr(info, data)
    return buffer.getvalue()


def test_pack_is_deterministic_whatever_the_timestamps_and_umask(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    first = pack_folder(folder)
    os.utime(folder / "bot.py", (1_000_000, 1_000_000))
    (folder / "bot.py").chmod(0o600)
    assert pack_folder(folder) == first


def test_pack_skips_caches_and_vcs_folders(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    for junk in ("__pycache__/bot.cpython-311.pyc", ".git/HEAD", ".venv/bin/python", "old.pyc"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_text("junk")
    names = zipfile.ZipFile(io.BytesIO(pack_folder(folder))).namelist()
    assert names == ["bot.py", "lib/helpers.py", "run.sh", "runplane.toml"]


def test_pack_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"runplane\.toml"):
        pack_folder(tmp_path)


def test_content_hash_is_the_same_for_the_same_content_zipped_differently(tmp_path: Path) -> None:
    packed = pack_folder(make_folder(tmp_path))
    entries = [
        ("runplane.toml", MANIFEST.encode(), stat.S_IFREG | 0o664),
        ("run.sh", b"#!/bin/sh\necho hi\n", stat.S_IFREG | 0o775),
        ("lib/", b"", stat.S_IFDIR | 0o755),
        ("lib/helpers.py", b"X = 1\n", stat.S_IFREG | 0o600),
        ("bot.py", b"def main():\n    return {}\n", stat.S_IFREG | 0o644),
    ]
    other = zip_of(entries)
    assert other != packed
    assert content_hash(other) == content_hash(packed)


def test_content_hash_changes_with_data_and_with_the_executable_bit(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    original = content_hash(pack_folder(folder))
    (folder / "run.sh").chmod(0o644)
    without_exec = content_hash(pack_folder(folder))
    (folder / "bot.py").write_text("def main():\n    return {'a': 1}\n")
    changed = content_hash(pack_folder(folder))
    assert len({original, without_exec, changed}) == 3


def test_read_manifest_text_returns_the_root_manifest(tmp_path: Path) -> None:
    assert read_manifest_text(pack_folder(make_folder(tmp_path))) == MANIFEST


def test_read_manifest_text_refuses_a_bundle_without_one() -> None:
    with pytest.raises(BundleError, match=r"no runplane\.toml"):
        read_manifest_text(zip_of([("sub/runplane.toml", b"", stat.S_IFREG | 0o644)]))


def test_garbage_is_not_a_bundle() -> None:
    with pytest.raises(BundleError, match="not a valid zip"):
        content_hash(b"definitely not a zip")


def test_extract_keeps_content_and_executable_bits(tmp_path: Path) -> None:
    data = pack_folder(make_folder(tmp_path))
    digest = content_hash(data)
    target = extract(data, tmp_path / "cache", digest)
    assert target == tmp_path / "cache" / digest
    assert (target / "lib" / "helpers.py").read_text() == "X = 1\n"
    assert os.access(target / "run.sh", os.X_OK)
    assert not os.access(target / "bot.py", os.X_OK)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [digest]  # no staging left


def test_extract_compiles_the_modules_once(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "broken.py").write_text("def (:\n")
    data = pack_folder(folder)
    target = extract(data, tmp_path / "cache", content_hash(data))
    tag = sys.implementation.cache_tag
    assert (target / "__pycache__" / f"bot.{tag}.pyc").is_file()
    assert (target / "lib" / "__pycache__" / f"helpers.{tag}.pyc").is_file()
    assert not (target / "__pycache__" / f"broken.{tag}.pyc").exists()  # left to its import
    assert (target / "broken.py").read_text() == "def (:\n"


def test_extract_reuses_an_existing_extraction(tmp_path: Path) -> None:
    data = pack_folder(make_folder(tmp_path))
    digest = content_hash(data)
    target = extract(data, tmp_path / "cache", digest)
    (target / "marker").write_text("still here")
    assert extract(data, tmp_path / "cache", digest) == target
    assert (target / "marker").exists()


def test_concurrent_extractions_of_one_digest_agree(tmp_path: Path) -> None:
    data = pack_folder(make_folder(tmp_path))
    digest = content_hash(data)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(extract(data, tmp_path / "c", digest)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [tmp_path / "c" / digest] * 8
    assert [p.name for p in (tmp_path / "c").iterdir()] == [digest]


def test_extract_refuses_content_that_does_not_match_the_digest(tmp_path: Path) -> None:
    data = pack_folder(make_folder(tmp_path))
    with pytest.raises(BundleError, match="content hash"):
        extract(data, tmp_path / "cache", "0" * 64)
    assert list((tmp_path / "cache").iterdir()) == []


def test_extract_refuses_a_digest_that_is_not_a_path_component(tmp_path: Path) -> None:
    data = pack_folder(make_folder(tmp_path))
    with pytest.raises(BundleError, match="not a sha256"):
        extract(data, tmp_path / "cache", "../elsewhere")


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("../evil.txt", stat.S_IFREG | 0o644),
        ("/etc/evil.txt", stat.S_IFREG | 0o644),
        ("lib/../../evil.txt", stat.S_IFREG | 0o644),
        ("lib\\..\\evil.txt", stat.S_IFREG | 0o644),
        ("link", stat.S_IFLNK | 0o777),
        ("fifo", stat.S_IFIFO | 0o644),
    ],
)
def test_unsafe_entries_are_refused(tmp_path: Path, name: str, mode: int) -> None:
    data = zip_of([("runplane.toml", b"", stat.S_IFREG | 0o644), (name, b"/etc/passwd", mode)])
    with pytest.raises(BundleError, match=r"unsafe path|symlink|not a regular"):
        content_hash(data)
    with pytest.raises(BundleError):
        extract(data, tmp_path / "cache", "a" * 64)
    assert not (tmp_path / "evil.txt").exists()


def test_an_entry_that_is_both_file_and_directory_is_refused() -> None:
    data = zip_of([("lib", b"x", stat.S_IFREG | 0o644), ("lib/a.py", b"", stat.S_IFREG | 0o644)])
    with pytest.raises(BundleError, match="both a file and a directory"):
        content_hash(data)


def test_too_many_entries_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundle, "MAX_BUNDLE_ENTRIES", 3)
    data = zip_of([(f"f{i}", b"", stat.S_IFREG | 0o644) for i in range(4)])
    with pytest.raises(BundleError, match="entries"):
        content_hash(data)
    with pytest.raises(BundleError, match="files"):
        pack_folder(make_folder(tmp_path))


def test_a_zip_bomb_is_refused_before_it_is_inflated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MAX_UNCOMPRESSED_BYTES", 1024 * 1024)
    data = zip_of([("zeros", bytes(2 * 1024 * 1024), stat.S_IFREG | 0o644)], zipfile.ZIP_DEFLATED)
    assert len(data) < 10 * 1024
    with pytest.raises(BundleError, match="expands to"):
        content_hash(data)


def test_a_header_that_understates_the_size_cannot_inflate_past_it(tmp_path: Path) -> None:
    honest = zip_of([("zeros", bytes(2 * 1024 * 1024), stat.S_IFREG | 0o644)], zipfile.ZIP_DEFLATED)
    lying = bytearray(honest)
    struct.pack_into("<I", lying, 22, 10)  # local header: uncompressed size
    central = honest.index(b"PK\x01\x02")
    struct.pack_into("<I", lying, central + 24, 10)  # central directory: uncompressed size
    with pytest.raises(BundleError, match="cannot read 'zeros'"):
        content_hash(bytes(lying))
    with pytest.raises(BundleError, match="cannot read 'zeros'"):
        extract(bytes(lying), tmp_path / "cache", "a" * 64)
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_oversized_bundle_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = pack_folder(make_folder(tmp_path))
    monkeypatch.setattr(bundle, "MAX_BUNDLE_BYTES", len(data) - 1)
    with pytest.raises(BundleError, match="limit"):
        read_manifest_text(data)
