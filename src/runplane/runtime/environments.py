"""Virtual environments for process versions that declare dependencies.

A runtime builds one environment per distinct dependency set (its
``Dependencies.key``: the requirements and the Python they are built with)
under ``<data dir>/environments/<key>``, with uv, on first need, and reuses it
for every version and execution with the same set:

- ``uv venv`` with the runtime's own interpreter (or the Python the folder
  asks for: an installed one, or uv's managed download where uv may fetch one),
  then ``uv pip install -r`` of the requirements;
- the package index is whatever the machine's configuration names: uv's own
  (``uv.toml``, ``UV_*`` variables), and pip's where uv's says nothing (see
  ``pip_settings``); nothing is hard-coded;
- one build per key at a time, across this runtime's executions (one task they
  all wait for) and across runtimes sharing the directory (a file lock); the
  build's output goes to the log of every execution waiting for it;
- a build that fails fails those executions with ``DEPENDENCIES_FAILED`` and the
  end of uv's output; nothing is kept, so a later execution tries again;
- a finished environment is marked ready (``.runplane-ready``) only at the end,
  so a build cut short is started over;
- at most ``max_environments`` are kept: after each build the least recently
  used that no execution of this runtime is using are removed.

An execution runs with the environment's interpreter (``VIRTUAL_ENV`` set, its
``bin`` first on ``PATH``). The supervisor and fork server it starts under are
runplane's own modules: they import only the standard library, and a ``.pth``
file in the environment puts a copy of just those modules on its path, so the
robot sees its own libraries and none of the runtime's.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from runplane.dependencies import Dependencies
from runplane.runtime.executor import LaunchError, LogSink, process_environment

log = logging.getLogger("runplane.runtime")

DEFAULT_MAX_ENVIRONMENTS = 16
READY_FILE = ".runplane-ready"
USED_FILE = ".runplane-used"  # its mtime: when an execution last used the environment
RUNNER_PTH = "_runplane_runner.pth"
FAILURE_TAIL_LINES = 20
# runplane's modules an execution's supervisor needs: the standard library besides
RUNNER_MODULES = (
    "__init__.py",
    "runtime/__init__.py",
    "runtime/supervisor.py",
    "runtime/forkserver.py",
)
# pip's settings uv understands, by pip's name: uv's variable
_PIP_TO_UV = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "no-index": "UV_NO_INDEX",
    "cert": "SSL_CERT_FILE",
}


class DependenciesFailed(LaunchError):
    """The version's environment could not be built."""

    code = "DEPENDENCIES_FAILED"


@dataclass(frozen=True)
class VirtualEnvironment:
    """A built environment: its root, and what an execution in it runs with."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"


def runtime_python() -> str:
    """What an environment without a Python request is built with: this interpreter."""
    return f"{sys.executable} {platform.python_version()}"


def uv_binary() -> str:
    """The uv that came with runplane (the ``uv`` package), else one on PATH."""
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise DependenciesFailed(
                "uv is not installed beside the runtime: it builds the process's environment"
            ) from None
        return found


def pip_settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """pip's index settings as uv's variables, for each one uv's own do not set.

    pip reads its global, user and site files, then ``PIP_CONFIG_FILE``'s
    (``[global]``, then ``[install]``), then ``PIP_*`` variables, later ones
    winning (``PIP_CONFIG_FILE=/dev/null``: no files); uv reads none of them.
    With extra indexes from pip, uv is told to pick the best match across all
    indexes, as pip does.
    """
    environ = dict(os.environ if environ is None else environ)
    found: dict[str, str] = {}
    parser = configparser.ConfigParser(interpolation=None)
    for path in _pip_config_files(environ):
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(path, encoding="utf-8")
    for section in ("global", "install"):
        if parser.has_section(section):
            for name in _PIP_TO_UV:
                if parser.has_option(section, name):
                    found[name] = parser.get(section, name)
    for name in _PIP_TO_UV:
        value = environ.get("PIP_" + name.upper().replace("-", "_"))
        if value is not None:
            found[name] = value
    settings: dict[str, str] = {}
    for name, value in found.items():
        variable = _PIP_TO_UV[name]
        if variable in environ:
            continue  # uv's own setting wins
        value = " ".join(value.split())  # pip allows one per line; uv, space-separated
        if name == "no-index":
            if value.lower() in ("1", "true", "yes", "on"):
                settings[variable] = "1"
            continue
        settings[variable] = value
    if "UV_EXTRA_INDEX_URL" in settings and "UV_INDEX_STRATEGY" not in environ:
        settings["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    return settings


def _pip_config_files(environ: dict[str, str]) -> list[Path]:
    """pip's files, in its order of precedence (later ones win): global, user (unless
    PIP_CONFIG_FILE names a file), site, then PIP_CONFIG_FILE's."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    home = Path(environ.get("HOME", str(Path.home())))
    config_home = Path(environ.get("XDG_CONFIG_HOME", str(home / ".config")))
    files = [Path(d) / "pip" / "pip.conf" for d in reversed(dirs) if d]
    files.append(Path("/etc/pip.conf"))
    if not (named and Path(named).exists()):
        files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    files.append(Path(sys.prefix) / "pip.conf")
    if named:
        files.append(Path(named))
    return files


class _Build:
    """One build in progress: the executions waiting for it hear its output."""

    def __init__(self) -> None:
        self.listeners: list[LogSink] = []
        self.task: asyncio.Task[VirtualEnvironment] | None = None


class Environments:
    """The runtime's cache of built environments."""

    def __init__(
        self,
        root: Path,
        *,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
        on_removed: Callable[[Path], Awaitable[None]] | None = None,
    ) -> None:
        self.root = root
        self.max_environments = max(1, max_environments)
        self.on_removed = on_removed
        self._builds: dict[str, _Build] = {}
        self._in_use: dict[str, int] = {}
        self._runner: Path | None = None
        self.builds_started = 0

    @contextlib.asynccontextmanager
    async def use(self, deps: Dependencies, log_sink: LogSink) -> AsyncIterator[VirtualEnvironment]:
        """The environment of `deps`, built first if need be, kept while the block runs."""
        key = deps.key(runtime_python())
        self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            environment = await self._ready(key, deps, log_sink)
            with contextlib.suppress(OSError):
                (environment.root / USED_FILE).touch()
            yield environment
        finally:
            self._in_use[key] -= 1
            if not self._in_use[key]:
                del self._in_use[key]

    async def prepare(self, deps: Dependencies, log_sink: LogSink) -> VirtualEnvironment:
        """Build the environment of `deps` now (``runplane runtime --prepare``)."""
        async with self.use(deps, log_sink) as environment:
            return environment

    def path(self, deps: Dependencies) -> Path:
        return self.root / deps.key(runtime_python())[:32]

    async def _ready(self, key: str, deps: Dependencies, log_sink: LogSink) -> VirtualEnvironment:
        environment = VirtualEnvironment(self.root / key[:32])
        if (environment.root / READY_FILE).is_file() and key not in self._builds:
            self._point_at_runner(environment)
            return environment
        build = self._builds.get(key)
        if build is None:
            build = self._builds[key] = _Build()
            build.task = asyncio.create_task(self._build(key, deps, environment, build))
            build.task.add_done_callback(lambda _: self._builds.pop(key, None))
        build.listeners.append(log_sink)
        try:
            assert build.task is not None
            return await asyncio.shield(build.task)
        finally:
            with contextlib.suppress(ValueError):
                build.listeners.remove(log_sink)

    async def _build(
        self, key: str, deps: Dependencies, environment: VirtualEnvironment, build: _Build
    ) -> VirtualEnvironment:
        async def say(text: str) -> None:
            for listener in list(build.listeners):
                with contextlib.suppress(Exception):
                    await listener(text)

        self.root.mkdir(parents=True, exist_ok=True)
        lock = await asyncio.to_thread(_lock, self.root / f"{key[:32]}.lock")
        try:
            if (environment.root / READY_FILE).is_file():  # another runtime built it meanwhile
                self._point_at_runner(environment)
                return environment
            self.builds_started += 1
            started = time.monotonic()
            await say(f"runplane: building the environment for {deps.source} ({key[:12]})\n")
            if deps.ignored:
                await say(
                    f"runplane: conda packages not installed (not Python packages): "
                    f"{', '.join(deps.ignored)}\n"
                )
            await asyncio.to_thread(shutil.rmtree, environment.root, True)
            try:
                await self._run_uv(deps, environment, say)
                self._point_at_runner(environment)
                marker = {"key": key, **deps.to_dict(), "builtAt": time.time()}
                (environment.root / READY_FILE).write_text(json.dumps(marker), encoding="utf-8")
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, environment.root, True)
                raise
            await say(f"runplane: environment ready in {time.monotonic() - started:.1f} s\n")
        finally:
            lock.close()
        await self._evict(keep=key)
        return environment

    async def _run_uv(
        self, deps: Dependencies, environment: VirtualEnvironment, say: LogSink
    ) -> None:
        uv = uv_binary()
        env = {**process_environment(), **pip_settings(), "UV_NO_PROGRESS": "1"}
        env.pop("VIRTUAL_ENV", None)
        python = deps.python or sys.executable
        await self._step(
            [uv, "venv", "--no-project", "--python", python, str(environment.root)], env, say
        )
        if not deps.requirements:
            return
        requirements = environment.root / "requirements.txt"
        requirements.write_text("\n".join(deps.requirements) + "\n", encoding="utf-8")
        await self._step(
            [uv, "pip", "install", "--python", str(environment.python), "-r", str(requirements)],
            env,
            say,
        )

    @staticmethod
    async def _step(command: list[str], env: dict[str, str], say: LogSink) -> None:
        tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
        except OSError as exc:
            raise DependenciesFailed(f"cannot run uv: {exc}") from exc
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode("utf-8", "replace")
                tail.append(line.rstrip())
                await say(line)
            code = await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if code != 0:
            what = " ".join(command[1:3])
            output = "\n".join(line for line in tail if line)
            raise DependenciesFailed(
                f"installing the dependencies failed (uv {what} exited with code {code}):\n{output}"
            )

    def _point_at_runner(self, environment: VirtualEnvironment) -> None:
        """Put runplane's supervisor modules (and only them) on the environment's path."""
        runner = self._runner_dir()
        for site_packages in (environment.root / "lib").glob("python*/site-packages"):
            pth = site_packages / RUNNER_PTH
            text = f"{runner}\n"
            with contextlib.suppress(OSError):
                if pth.read_text(encoding="utf-8") == text:
                    continue
            pth.write_text(text, encoding="utf-8")

    def _runner_dir(self) -> Path:
        if self._runner is not None:
            return self._runner
        package = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256()
        for name in RUNNER_MODULES:
            digest.update(name.encode() + b"\0" + (package / name).read_bytes())
        runner = self.root / "runner" / digest.hexdigest()[:16]
        if not (runner / "runplane" / "runtime" / "forkserver.py").is_file():
            staging = self.root / "runner" / f".{runner.name}.{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            for name in RUNNER_MODULES:
                target = staging / "runplane" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(package / name, target)
            try:
                staging.rename(runner)
            except OSError as exc:  # another runtime put it there first
                shutil.rmtree(staging, ignore_errors=True)
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        self._runner = runner
        return runner

    async def _evict(self, *, keep: str) -> None:
        """Remove the least recently used environments beyond the bound, unused ones only."""
        ready = [p.parent for p in self.root.glob(f"*/{READY_FILE}")]
        if len(ready) <= self.max_environments:
            return
        busy = {k[:32] for k in self._in_use} | {k[:32] for k in self._builds} | {keep[:32]}

        def last_used(root: Path) -> float:
            try:
                return (root / USED_FILE).stat().st_mtime
            except OSError:
                return (root / READY_FILE).stat().st_mtime

        excess = len(ready) - self.max_environments
        for root in sorted(ready, key=last_used):
            if excess <= 0:
                break
            if root.name in busy:
                continue
            lock = await asyncio.to_thread(_lock, self.root / f"{root.name}.lock")
            try:
                with contextlib.suppress(OSError):
                    (root / READY_FILE).unlink()
                await asyncio.to_thread(shutil.rmtree, root, True)
            finally:
                lock.close()
            log.info("environment %s removed (least recently used)", root.name)
            excess -= 1
            if self.on_removed is not None:
                await self.on_removed(root)


class _FileLock:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)  # closing the descriptor releases the lock


def _lock(path: Path) -> _FileLock:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return _FileLock(fd)
