"""An execution's folder: made, cleared, and an emptied one reused by the next execution."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from runplane.runtime import executor
from runplane.runtime.executor import FREE_FOLDER_PREFIX, Job, prepare, remove


def job(tmp_path: Path, execution_id: str, inputs: dict[str, object]) -> Job:
    return Job(execution_id, 1, tmp_path, "main:main", None, inputs, (), 30, tmp_path / "work")


def kept(work_root: Path) -> list[Path]:
    return [p for p in work_root.iterdir() if p.name.startswith(FREE_FOLDER_PREFIX)]


def test_an_emptied_folder_is_kept_and_renamed_for_the_next_execution(tmp_path: Path) -> None:
    async def main() -> None:
        first = prepare(job(tmp_path, "exec/one", {"n": 1}))
        assert first.root.name.startswith("exec_one-1-")
        assert json.loads(first.input.read_text()) == {"n": 1}
        assert first.work.is_dir() and not any(first.work.iterdir())
        first.output.write_text("{}")
        first.status.write_text('{"exit_code": 0, "signal": null}')
        remove(first)
        assert not first.root.exists()
        [folder] = kept(tmp_path / "work")
        assert [p.name for p in folder.iterdir()] == ["work"]

        second = prepare(job(tmp_path, "exec-two", {"n": 2}))
        assert second.root.name.startswith("exec-two-1-")
        assert kept(tmp_path / "work") == []  # renamed, not made
        assert sorted(p.name for p in second.root.iterdir()) == ["input.json", "work"]
        assert json.loads(second.input.read_text()) == {"n": 2}
        remove(second)
        executor.discard_free_folders()
        assert list((tmp_path / "work").iterdir()) == []

    asyncio.run(main())


def test_a_folder_whose_run_left_files_is_removed_not_kept(tmp_path: Path) -> None:
    async def main() -> None:
        files = prepare(job(tmp_path, "exec-1", {}))
        (files.work / "report.csv").write_text("a,b\n")
        (files.root / "stray").write_text("x")
        remove(files)
        await asyncio.sleep(0)
        for _ in range(200):  # removed on a worker thread
            if not files.root.exists():
                break
            await asyncio.sleep(0.01)
        assert not files.root.exists()
        assert kept(tmp_path / "work") == []
        again = prepare(job(tmp_path, "exec-2", {}))
        assert not any(again.work.iterdir())  # nothing of the earlier run
        remove(again)
        executor.discard_free_folders()

    asyncio.run(main())


def test_at_most_a_few_emptied_folders_are_kept(tmp_path: Path) -> None:
    async def main() -> None:
        many = [
            prepare(job(tmp_path, f"exec-{i}", {})) for i in range(executor.KEEP_FREE_FOLDERS + 4)
        ]
        for files in many:
            remove(files)
        await asyncio.sleep(0.2)
        assert len(kept(tmp_path / "work")) == executor.KEEP_FREE_FOLDERS
        executor.discard_free_folders()
        for _ in range(200):
            if not list((tmp_path / "work").iterdir()):
                break
            await asyncio.sleep(0.01)
        assert list((tmp_path / "work").iterdir()) == []

    asyncio.run(main())
