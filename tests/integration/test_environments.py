"""Virtual environments per dependency set: built once with uv from the machine's
index configuration, shared, failed builds retried, least recently used ones removed,
and executions run in them under both launchers."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from runplane.dependencies import Dependencies
from runplane.runtime.environments import (
    READY_FILE,
    DependenciesFailed,
    Environments,
    VirtualEnvironment,
    pip_settings,
)
from tests.integration.test_executor import Log, launched, make_job, make_process
from tests.support import make_wheel

PROBE = "rp-envprobe"


def probe_deps(version: str) -> Dependencies:
    return Dependencies(source="requirements.txt", requirements=(f"{PROBE}=={version}",))


@pytest.fixture
def wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A find-links folder with the probe library at 1.0 and 2.0, and uv pointed at it
    alone (no network), with its own cache."""
    folder = tmp_path / "wheels"
    for version in ("1.0", "2.0"):
        make_wheel(folder, PROBE, version, {"rp_envprobe.py": f'VERSION = "{version}"\n'})
    monkeypatch.setenv("UV_FIND_LINKS", str(folder))
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return folder


def python_says(environment: VirtualEnvironment, code: str) -> str:
    done = subprocess.run(
        [str(environment.python), "-c", code], capture_output=True, text=True, timeout=30
    )
    return (done.stdout + done.stderr).strip()


def test_each_set_is_built_once_and_sees_only_its_own_libraries(
    tmp_path: Path, wheels: Path
) -> None:
    envs = Environments(tmp_path / "environments")
    logs = [Log() for _ in range(4)]

    async def main() -> list[VirtualEnvironment]:
        async def use(deps: Dependencies, log: Log) -> VirtualEnvironment:
            async with envs.use(deps, log) as environment:
                return environment

        wanted = [probe_deps("1.0"), probe_deps("1.0"), probe_deps("1.0"), probe_deps("2.0")]
        return list(
            await asyncio.gather(*(use(d, log) for d, log in zip(wanted, logs, strict=True)))
        )

    first, same, again, other = asyncio.run(main())
    assert envs.builds_started == 2
    assert first == same == again != other
    # every execution that waited for the build has its output in its log
    for log in logs:
        assert "building the environment" in log.text and PROBE in log.text, log.text
    assert python_says(first, "import rp_envprobe; print(rp_envprobe.VERSION)") == "1.0"
    assert python_says(other, "import rp_envprobe; print(rp_envprobe.VERSION)") == "2.0"
    # runplane's supervisor is importable there, and nothing else of the runtime's
    assert python_says(first, "import runplane.runtime.forkserver; print('ok')") == "ok"
    for module in ("fastapi", "httpx", "runplane.api", "sqlalchemy"):
        said = python_says(first, f"import {module}")
        assert "ModuleNotFoundError" in said, (module, said)

    # Used again, even by another Environments of the same folder: no new build.
    envs2 = Environments(tmp_path / "environments")

    async def reuse() -> VirtualEnvironment:
        async with envs2.use(probe_deps("2.0"), Log()) as environment:
            return environment

    assert asyncio.run(reuse()) == other and envs2.builds_started == 0


def test_a_failed_build_fails_with_its_message_and_is_tried_again_later(
    tmp_path: Path, wheels: Path
) -> None:
    envs = Environments(tmp_path / "environments")
    missing = probe_deps("9.9")

    async def use(log: Log) -> VirtualEnvironment:
        async with envs.use(missing, log) as environment:
            return environment

    log = Log()
    with pytest.raises(DependenciesFailed) as failed:
        asyncio.run(use(log))
    assert failed.value.code == "DEPENDENCIES_FAILED"
    assert f"{PROBE}==9.9" in str(failed.value) and "uv pip" in str(failed.value)
    assert f"{PROBE}==9.9" in log.text
    assert not envs.path(missing).exists(), "nothing of a failed build is kept"

    with pytest.raises(DependenciesFailed):
        asyncio.run(use(Log()))
    assert envs.builds_started == 2, "a later use tries again"

    make_wheel(wheels, PROBE, "9.9", {"rp_envprobe.py": 'VERSION = "9.9"\n'})
    environment = asyncio.run(use(Log()))
    assert python_says(environment, "import rp_envprobe; print(rp_envprobe.VERSION)") == "9.9"


def test_the_least_recently_used_environment_not_in_use_is_removed(
    tmp_path: Path, wheels: Path
) -> None:
    removed: list[Path] = []

    async def on_removed(root: Path) -> None:
        removed.append(root)

    envs = Environments(tmp_path / "environments", max_environments=1, on_removed=on_removed)

    async def main() -> None:
        async with (
            envs.use(probe_deps("1.0"), Log()) as one,
            envs.use(probe_deps("2.0"), Log()) as two,
        ):
            # over the bound, but the first is in use: both stay
            assert (one.root / READY_FILE).exists() and (two.root / READY_FILE).exists()
        assert removed == []
        async with envs.use(Dependencies("requirements.txt", ()), Log()) as three:
            assert (three.root / READY_FILE).exists()
        assert sorted(removed) == sorted([one.root, two.root])
        assert not one.root.exists() and not two.root.exists()

    asyncio.run(main())


@pytest.mark.parametrize("launcher_name", ["spawn", "warm"])
def test_an_execution_runs_under_its_environments_interpreter(
    tmp_path: Path, wheels: Path, launcher_name: str
) -> None:
    bundle = make_process(
        tmp_path,
        {
            "bot.py": """
                import os, shutil, sys
                import rp_envprobe

                def main():
                    return {
                        "version": rp_envprobe.VERSION,
                        "prefix": sys.prefix,
                        "virtualEnv": os.environ["VIRTUAL_ENV"],
                        "python": shutil.which("python"),
                    }
            """
        },
    )
    envs = Environments(tmp_path / "environments")

    async def main() -> tuple[dict[str, object] | None, Path]:
        log = Log()
        async with envs.use(probe_deps("2.0"), log) as environment:
            root = environment.root
            job = replace(make_job(tmp_path, bundle, entrypoint="bot:main"), environment=root)
            async with launched(launcher_name) as launcher:
                outcome = await (await launcher.start(job, log)).wait()
            assert outcome.status == "succeeded", (outcome, log.text)
            return outcome.result, root

    result, root = asyncio.run(main())
    assert result == {
        "version": "2.0",
        "prefix": str(root),
        "virtualEnv": str(root),
        "python": str(root / "bin" / "python"),
    }


def test_pip_settings_become_uv_settings_unless_uv_has_its_own(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://mirror.example/simple\n"
        "extra-index-url =\n    https://a.example/simple\n    https://b.example/simple\n"
        "[install]\nfind-links = /srv/wheels\n"
    )
    base = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none")}
    settings = pip_settings({**base, "PIP_CONFIG_FILE": str(conf)})
    settings.pop("SSL_CERT_FILE", None)  # this machine's /etc/pip.conf may name one
    assert settings == {
        "UV_INDEX_URL": "https://mirror.example/simple",
        "UV_EXTRA_INDEX_URL": "https://a.example/simple https://b.example/simple",
        "UV_FIND_LINKS": "/srv/wheels",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
    }
    # pip's variables win over its files; uv's own settings win over both
    settings = pip_settings(
        {
            **base,
            "PIP_CONFIG_FILE": str(conf),
            "PIP_INDEX_URL": "https://env.example/simple",
            "UV_FIND_LINKS": "/mine",
            "PIP_NO_INDEX": "yes",
        }
    )
    assert settings["UV_INDEX_URL"] == "https://env.example/simple"
    assert "UV_FIND_LINKS" not in settings and settings["UV_NO_INDEX"] == "1"
    assert pip_settings({**base, "PIP_CONFIG_FILE": "/dev/null"}) == {}


def other_python() -> str | None:
    """An installed interpreter of another minor version than the runtime's, if any."""
    import glob
    import shutil
    import sys

    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    for version in ("3.10", "3.12", "3.13"):
        if version == mine:
            continue
        pyenv = sorted(glob.glob(str(Path.home() / f".pyenv/versions/{version}.*/bin/python3")))
        for candidate in [shutil.which(f"python{version}"), *pyenv]:
            if candidate is None:
                continue
            done = subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=30)
            if done.returncode == 0:
                return candidate
    return None


@pytest.mark.parametrize("launcher_name", ["spawn", "warm"])
def test_an_environment_of_another_python_runs_the_supervisor_there(
    tmp_path: Path, wheels: Path, launcher_name: str
) -> None:
    python = other_python()
    if python is None:
        pytest.skip("no Python of another minor version is installed on this machine")
    bundle = make_process(
        tmp_path,
        {"bot.py": "import sys\ndef main():\n    return {'version': list(sys.version_info[:2])}\n"},
    )
    deps = Dependencies("conda.yaml", (f"{PROBE}==1.0",), python=python)
    envs = Environments(tmp_path / "environments")

    async def main() -> dict[str, object] | None:
        log = Log()
        async with envs.use(deps, log) as environment:
            job = replace(
                make_job(tmp_path, bundle, entrypoint="bot:main"), environment=environment.root
            )
            async with launched(launcher_name) as launcher:
                outcome = await (await launcher.start(job, log)).wait()
            assert outcome.status == "succeeded", (outcome, log.text)
            return outcome.result

    said = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert asyncio.run(main()) == {"version": [int(said[0]), int(said[1])]}
