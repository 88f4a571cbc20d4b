"""The warm launcher's own promises: forked by its fork server, which may die without
losing or repeating an execution; preloaded processes import their module once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runplane.runtime.executor import Job, Outcome
from runplane.runtime.warm import WarmLauncher
from tests.integration.test_executor import Log, is_alive, make_job, make_process, until

T = TypeVar("T")

BOT = {
    "bot.py": """
        import os, time
        from pathlib import Path

        def main(name="world"):
            return {"greeting": f"Hello, {name}!", "pid": os.getpid()}

        def waits_for(path):
            print("ready", flush=True)
            while not Path(path).exists():
                time.sleep(0.01)
            return {"waited": True}

        def counts(path):
            with open(path, "a") as stream:
                stream.write("ran\\n")
            return {}
    """,
    "heavy.py": """
        import os
        with open("imports.log", "a") as stream:
            stream.write(f"{os.getpid()}\\n")

        def main():
            return {
                "execution": os.environ["RUNPLANE_EXECUTION_ID"],
                "cwd": os.getcwd(),
                "pid": os.getpid(),
            }
    """,
    "hang.py": """
        import time

        def main():
            print("started", flush=True)
            time.sleep(1000)
    """,
    "broken.py": """
        with open("imports.log", "a") as stream:
            stream.write("tried\\n")
        raise RuntimeError("cannot reach the licence server")

        def main():
            return {}
    """,
}


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def cmdline_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def job(tmp_path: Path, bundle: Path, entrypoint: str, n: int, **kw: Any) -> Job:
    base = make_job(tmp_path, bundle, entrypoint=entrypoint, inputs=kw.pop("inputs", None))
    return Job(**{**base.__dict__, "execution_id": f"exec-{n}", **kw})


def test_each_execution_is_forked_by_the_fork_server(tmp_path: Path) -> None:
    bundle = make_process(tmp_path, BOT)
    flag = tmp_path / "go"

    async def main() -> None:
        launcher = WarmLauncher()
        try:
            log = Log()
            running = await launcher.start(
                job(tmp_path, bundle, "bot:waits_for", 1, inputs={"path": str(flag)}), log
            )
            await until(lambda: "ready" in log.text, "the process to start")
            assert running.pid is not None
            assert parent_of(running.pid) == launcher.server_pid
            assert os.getpgid(running.pid) == running.pid  # its own group, as spawned
            assert b"runplane.runtime.forkserver" in cmdline_of(launcher.server_pid)
            flag.touch()
            assert await running.wait() == Outcome("succeeded", {"waited": True}, None, None)
        finally:
            await launcher.close()

    run_async(main())


def test_the_fork_server_imports_only_what_an_execution_needs() -> None:
    probe = (
        "import sys; import runplane.runtime.forkserver; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, check=True, text=True
    )
    outside = set(loaded.stdout.split()) - sys.stdlib_module_names - {"runplane"}
    assert not {name for name in outside if not name.startswith("_")}, outside
    runplane_modules = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; import runplane.runtime.forkserver; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('runplane'))))",
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()
    assert runplane_modules == [
        "runplane",
        "runplane.runtime",
        "runplane.runtime.forkserver",
        "runplane.runtime.supervisor",
    ]


def test_what_a_forked_execution_imports_is_loaded_in_the_fork_server_already() -> None:
    """The supervisor imports these in the child of every entry point; from disk, that
    would cost milliseconds per execution (traceback alone about 2.5 ms)."""
    probe = (
        "import sys; import runplane.runtime.forkserver; "
        "print(' '.join(m for m in ('importlib', 'traceback', 'json', 'ctypes') "
        "if m not in sys.modules))"
    )
    missing = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, check=True, text=True
    ).stdout.split()
    assert missing == ["ctypes"]  # imported when the server makes itself a subreaper


def test_a_fork_server_killed_mid_execution_loses_nothing(tmp_path: Path) -> None:
    bundle = make_process(tmp_path, BOT)
    flag = tmp_path / "go"

    async def main() -> None:
        launcher = WarmLauncher()
        try:
            log = Log()
            running = await launcher.start(
                job(tmp_path, bundle, "bot:waits_for", 1, inputs={"path": str(flag)}), log
            )
            await until(lambda: "ready" in log.text, "the process to start")
            first_server = launcher.server_pid
            assert first_server is not None
            os.kill(first_server, signal.SIGKILL)
            await until(lambda: not is_alive(first_server), "the fork server to die")
            assert running.pid is not None and is_alive(running.pid)  # the execution goes on
            flag.touch()
            # Its end is seen through its pidfd; the real outcome comes from its files.
            assert await running.wait() == Outcome("succeeded", {"waited": True}, None, None)
            assert not is_alive(running.pid)
            # The next launch starts another fork server.
            again = await launcher.start(job(tmp_path, bundle, "bot:main", 2), Log())
            outcome = await again.wait()
            assert outcome.status == "succeeded"
            assert launcher.servers_started == 2
            assert launcher.server_pid != first_server
        finally:
            await launcher.close()

    run_async(main())


def test_a_launch_the_dying_fork_server_never_answered_runs_once(tmp_path: Path) -> None:
    bundle = make_process(tmp_path, BOT)
    count = tmp_path / "count"

    async def main() -> None:
        launcher = WarmLauncher()
        try:
            await launcher.warm_up()
            server = launcher.server_pid
            assert server is not None
            os.kill(server, signal.SIGSTOP)  # the request waits in its socket, unread
            started = asyncio.create_task(
                launcher.start(
                    job(tmp_path, bundle, "bot:counts", 1, inputs={"path": str(count)}), Log()
                )
            )
            await asyncio.sleep(0.1)
            assert not started.done()
            os.kill(server, signal.SIGKILL)
            running = await started
            assert (await running.wait()).status == "succeeded"
            assert launcher.servers_started == 2
        finally:
            await launcher.close()

    run_async(main())
    assert count.read_text() == "ran\n"


def test_a_preloaded_process_imports_its_module_once(tmp_path: Path) -> None:
    bundle = make_process(tmp_path, BOT)

    async def main() -> list[Outcome]:
        launcher = WarmLauncher()
        try:
            outcomes = []
            for n in range(3):
                running = await launcher.start(
                    job(tmp_path, bundle, "heavy:main", n, preload=True), Log()
                )
                outcomes.append(await running.wait())
            assert len(launcher.zygote_pids) == 1
            return outcomes
        finally:
            await launcher.close()

    outcomes = run_async(main())
    assert [o.status for o in outcomes] == ["succeeded"] * 3
    assert [o.result["execution"] for o in outcomes if o.result] == [
        "exec-0",
        "exec-1",
        "exec-2",
    ]
    assert {o.result["cwd"] for o in outcomes if o.result} == {str(bundle)}
    assert len({o.result["pid"] for o in outcomes if o.result}) == 3  # a process each
    assert len((bundle / "imports.log").read_text().splitlines()) == 1


def test_without_preload_the_module_is_imported_by_each_execution(tmp_path: Path) -> None:
    bundle = make_process(tmp_path, BOT)

    async def main() -> None:
        launcher = WarmLauncher()
        try:
            for n in range(2):
                running = await launcher.start(job(tmp_path, bundle, "heavy:main", n), Log())
                assert (await running.wait()).status == "succeeded"
            assert launcher.zygote_pids == []
        finally:
            await launcher.close()

    run_async(main())
    assert len((bundle / "imports.log").read_text().splitlines()) == 2


def test_a_module_that_fails_to_preload_fails_each_execution_once(tmp_path: Path) -> None:
    bundle = make_process(tmp_path, BOT)

    async def main() -> list[tuple[Outcome, Log]]:
        launcher = WarmLauncher()
        try:
            results = []
            for n in range(2):
                log = Log()
                running = await launcher.start(
                    job(tmp_path, bundle, "broken:main", n, preload=True), log
                )
                results.append((await running.wait(), log))
            await asyncio.sleep(0.5)  # no restart loop meanwhile
            assert launcher.zygote_pids == []
            return results
        finally:
            await launcher.close()

    results = run_async(main())
    for outcome, log in results:
        assert outcome.status == "failed"
        assert outcome.error_code == "PRELOAD_FAILED"
        assert outcome.error_message == (
            "preloading module 'broken' failed: RuntimeError: cannot reach the licence server"
        )
        assert "Traceback" in log.text and "licence server" in log.text
    assert (bundle / "imports.log").read_text() == "tried\ntried\n"  # once per execution


def test_zygotes_are_bounded_and_idle_ones_exit(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = make_process(tmp_path / "a", BOT), make_process(tmp_path / "b", BOT)

    async def main() -> None:
        launcher = WarmLauncher(preload_max=1, preload_idle_seconds=0.5)
        try:
            running = await launcher.start(
                job(tmp_path, first, "heavy:main", 1, preload=True), Log()
            )
            assert (await running.wait()).status == "succeeded"
            (zygote_a,) = launcher.zygote_pids
            running = await launcher.start(
                job(tmp_path, second, "heavy:main", 2, preload=True), Log()
            )
            assert (await running.wait()).status == "succeeded"
            (zygote_b,) = launcher.zygote_pids  # the least recently used one went
            assert zygote_b != zygote_a
            await until(lambda: not is_alive(zygote_a), "the evicted zygote to exit")
            await until(lambda: not launcher.zygote_pids, "the idle zygote to be let go")
            await until(lambda: not is_alive(zygote_b), "the idle zygote to exit")
        finally:
            await launcher.close()

    run_async(main())


@pytest.mark.parametrize("preload", [False, True], ids=["forked", "preloaded"])
def test_a_warm_execution_ends_its_whole_group_on_timeout(tmp_path: Path, preload: bool) -> None:
    bundle = make_process(tmp_path, BOT)

    async def main() -> tuple[Outcome, int]:
        launcher = WarmLauncher()
        try:
            running = await launcher.start(
                job(tmp_path, bundle, "hang:main", 1, preload=preload, timeout_seconds=0.5), Log()
            )
            outcome = await running.wait()
            assert running.pid is not None
            return outcome, running.pid
        finally:
            await launcher.close()

    outcome, pid = run_async(main())
    assert outcome.status == "timed_out"
    assert not is_alive(pid)


def children_of(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def test_after_a_launch_the_next_supervisor_waits_forked_ahead(tmp_path: Path) -> None:
    bundle = make_process(tmp_path, BOT)

    async def main() -> None:
        launcher = WarmLauncher(spare_idle_seconds=0.5)
        try:
            await launcher.warm_up()
            server = launcher.server_pid
            assert server is not None
            await asyncio.sleep(0.2)
            assert children_of(server) == set()  # an idle runtime keeps no spare
            first = await launcher.start(job(tmp_path, bundle, "bot:main", 1), Log())
            assert (await first.wait()).status == "succeeded"
            await until(lambda: len(children_of(server)) == 1, "the spare")
            (spare,) = children_of(server)
            assert os.getsid(spare) == spare  # out of the server's session already
            second = await launcher.start(job(tmp_path, bundle, "bot:main", 2), Log())
            assert second.pid == spare  # the launch was handed to it
            assert (await second.wait()).status == "succeeded"
            # Unused for the idle time, the spare exits (and is not reported as news).
            await until(lambda: children_of(server) == set(), "the idle spare to exit")
            third = await launcher.start(job(tmp_path, bundle, "bot:main", 3), Log())
            assert (await third.wait()).status == "succeeded"
        finally:
            await launcher.close()

    run_async(main())


def test_a_spare_killed_while_it_waits_costs_no_launch(tmp_path: Path) -> None:
    bundle = make_process(tmp_path, BOT)

    async def main() -> None:
        launcher = WarmLauncher()
        try:
            first = await launcher.start(job(tmp_path, bundle, "bot:main", 1), Log())
            assert (await first.wait()).status == "succeeded"
            server = launcher.server_pid
            assert server is not None
            await until(lambda: len(children_of(server)) == 1, "the spare")
            (spare,) = children_of(server)
            os.kill(spare, signal.SIGKILL)
            await until(lambda: children_of(server) == set(), "the killed spare to be reaped")
            for n in (2, 3):
                running = await launcher.start(job(tmp_path, bundle, "bot:main", n), Log())
                assert running.pid != spare
                assert (await running.wait()).status == "succeeded"
        finally:
            await launcher.close()

    run_async(main())
