"""A Robocorp robot folder (``robot.yaml``, no ``runplane.toml``) as a process.

``robot.yaml`` is read as Robocorp's ``rcc`` reads it:

- ``tasks``: each with exactly one of ``shell`` (split shell-style, not run by a
  shell), ``command`` (an argument list) or ``robotTaskName`` (a Robot Framework
  task: ``python -m robot --report NONE --outputdir <artifactsDir> --logtitle
  "Task log" --task <name> .``);
- ``condaConfigFile`` (or the first existing file of ``environmentConfigs``
  that fits this platform): the robot's dependencies (dependencies.py);
- ``artifactsDir`` (required, relative): created for each execution and named
  by ``ROBOT_ARTIFACTS``; what the robot leaves there is kept;
- ``PATH`` entries go first on ``PATH``; ``PYTHONPATH`` entries replace it.

``preRunScripts`` are refused (not supported), rather than silently skipped.

A process runs one task: the one named at deploy, or the only one. To run
several tasks of one robot, deploy it once per task, each as its own process.
The process declares no parameters: whatever input a trigger brings is the
robot's input work item (its payload), on every surface.
"""

from __future__ import annotations

import platform
import re
import shlex
import sys
from collections.abc import Callable
from typing import Any

from runplane.dependencies import DependencyError, read_dependencies
from runplane.domain.errors import InvalidManifest
from runplane.manifest import NAME_RE, ProcessSpec

ROBOT_FILE = "robot.yaml"
DEFAULT_TIMEOUT_SECONDS = 3600.0
_SAFE_RELATIVE = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$)).+$")
_PLATFORM_WORDS = {"linux": "linux", "darwin": "darwin", "win32": "windows"}


def _problem(name: str, detail: str, code: str = "invalid") -> dict[str, Any]:
    return {"file": ROBOT_FILE, "name": name, "code": code, "detail": detail}


def task_command(task: dict[str, Any], name: str, artifacts: str) -> list[str] | str:
    """The argv of a task; or why it has none."""
    kinds = [k for k in ("shell", "command", "robotTaskName") if k in task]
    if len(kinds) != 1:
        return "needs exactly one of shell, command or robotTaskName"
    if "shell" in task:
        if not isinstance(task["shell"], str) or not task["shell"].strip():
            return "shell must be a command line"
        try:
            return shlex.split(task["shell"])
        except ValueError as exc:
            return f"shell cannot be split: {exc}"
    if "command" in task:
        argv = task["command"]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            return "command must be a non-empty list of strings"
        return list(argv)
    robot_task = task["robotTaskName"]
    if not isinstance(robot_task, str) or not robot_task:
        return "robotTaskName must be a task name"
    return [
        "python", "-m", "robot", "--report", "NONE", "--outputdir", artifacts,
        "--logtitle", "Task log", "--task", robot_task, ".",
    ]  # fmt: skip


def choose_task(tasks: dict[str, Any], wanted: str | None) -> str | list[str]:
    """The task name to run: `wanted` by exact name, then ignoring case; the only task
    when none is named. Otherwise the names there are (a list)."""
    names = list(tasks)
    if wanted is None:
        return names[0] if len(names) == 1 else names
    if wanted in tasks:
        return wanted
    folded = [n for n in names if n.casefold() == wanted.casefold()]
    return folded[0] if len(folded) == 1 else names


def _environment_file(raw: dict[str, Any], read: Callable[[str], str | None]) -> str | None:
    if isinstance(raw.get("condaConfigFile"), str):
        return str(raw["condaConfigFile"])
    configs = raw.get("environmentConfigs")
    if not isinstance(configs, list):
        return None
    here = _PLATFORM_WORDS.get(sys.platform, sys.platform)
    machine = "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "amd64"
    others = {"linux", "darwin", "windows"} - {here}
    for name in configs:
        if not isinstance(name, str):
            continue
        words = set(re.split(r"[_.\-]", name.lower()))
        if words & others or ({"amd64", "arm64"} & words and machine not in words):
            continue
        if read(name) is not None:
            return name
    return None


def parse_robot(
    text: str, read: Callable[[str], str | None], name: str, task: str | None
) -> ProcessSpec:
    """The ProcessSpec of a robot folder run as process `name` with `task`;
    InvalidManifest names every problem."""
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidManifest(
            f"{ROBOT_FILE} is not valid YAML: {exc}",
            problems=[_problem("", str(exc), "yaml_syntax")],
        ) from exc
    if not isinstance(raw, dict):
        raise InvalidManifest(
            f"{ROBOT_FILE} must be a mapping.", problems=[_problem("", "must be a mapping")]
        )
    problems: list[dict[str, Any]] = []
    if not NAME_RE.match(name):
        problems.append(
            _problem(
                "name",
                "the process name must be 1-100 letters, digits, '.', '_' or '-', starting "
                "with a letter or digit (deploy with another name)",
            )
        )
    artifacts = raw.get("artifactsDir")
    if not isinstance(artifacts, str) or not _SAFE_RELATIVE.match(artifacts):
        problems.append(
            _problem("artifactsDir", "required: a relative folder inside the robot", "missing_key")
        )
        artifacts = "output"
    tasks = raw.get("tasks")
    chosen: str | None = None
    command: list[str] = []
    if not isinstance(tasks, dict) or not tasks:
        problems.append(_problem("tasks", "required: at least one task", "missing_key"))
    else:
        picked = choose_task(tasks, task)
        if isinstance(picked, list):
            listed = ", ".join(repr(n) for n in picked)
            detail = (
                f"no task {task!r}; the tasks are {listed}"
                if task is not None
                else f"choose one of the tasks {listed} (each may be a process of its own)"
            )
            problems.append(_problem("tasks", detail, "task_required"))
        else:
            chosen = picked
            body = tasks[picked]
            argv = task_command(body if isinstance(body, dict) else {}, picked, artifacts)
            if isinstance(argv, str):
                problems.append(_problem(f"tasks.{picked}", argv))
            else:
                command = argv
    paths: dict[str, list[str]] = {}
    for key in ("PATH", "PYTHONPATH"):
        entries = raw.get(key) or []
        if not isinstance(entries, list) or not all(
            isinstance(e, str) and _SAFE_RELATIVE.match(e) for e in entries
        ):
            problems.append(_problem(key, "must be a list of relative folders inside the robot"))
            entries = []
        paths[key] = list(entries)
    if raw.get("preRunScripts"):
        problems.append(
            _problem("preRunScripts", "not supported: run them from the task", "unsupported")
        )
    dependencies = None
    env_file = _environment_file(raw, read)
    if env_file is not None:
        try:
            dependencies = read_dependencies(read, env_file)
        except DependencyError as exc:
            problems.extend(exc.problems)
    if problems:
        names = ", ".join(f"{p['file']} {p['name']}".strip() for p in problems)
        raise InvalidManifest(
            f"The robot has {len(problems)} problem(s): {names}.", problems=problems
        )
    assert chosen is not None
    return ProcessSpec(
        name=name,
        entrypoint=None,
        command=command,
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
        retries=0,
        parameters={},
        outputs={},
        description=f"Robocorp robot, task {chosen!r}",
        dependencies=dependencies,
        robot={
            "task": chosen,
            "tasks": list(tasks) if isinstance(tasks, dict) else [],
            "artifactsDir": artifacts,
            "path": paths["PATH"],
            "pythonpath": paths["PYTHONPATH"],
        },
    )
