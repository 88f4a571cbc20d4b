"""robot.yaml read as Robocorp's rcc reads it: the three kinds of task, the task chosen
by name (exact, then ignoring case), the environment file, and every problem named."""

from __future__ import annotations

import pytest

from runplane.domain.errors import InvalidBundle, InvalidManifest
from runplane.folder import read_folder
from runplane.robot import parse_robot

ROBOT = """
tasks:
  Run all:
    shell: python -m robocorp.tasks run tasks.py --option "two words"
  As list:
    command: [python, -c, "print(1)"]
  Framework task:
    robotTaskName: Process invoices
environmentConfigs:
  - environment_windows_amd64_freeze.yaml
  - environment_darwin_arm64.yaml
  - conda.yaml
artifactsDir: output
PATH: [bin]
PYTHONPATH: [libraries, .]
"""
CONDA = "dependencies:\n  - python=3.11\n  - pip:\n    - robocorp-tasks==4.1.1\n"


def files(**more: str) -> dict[str, str]:
    return {"robot.yaml": ROBOT, "conda.yaml": CONDA, **more}


def test_each_kind_of_task_becomes_the_command() -> None:
    read = files().get
    shell = parse_robot(ROBOT, read, "bot", "Run all")
    assert shell.command == [
        "python", "-m", "robocorp.tasks", "run", "tasks.py", "--option", "two words",
    ]  # fmt: skip
    assert parse_robot(ROBOT, read, "bot", "as LIST").command == ["python", "-c", "print(1)"]
    framework = parse_robot(ROBOT, read, "bot", "Framework task")
    assert framework.command == [
        "python", "-m", "robot", "--report", "NONE", "--outputdir", "output",
        "--logtitle", "Task log", "--task", "Process invoices", ".",
    ]  # fmt: skip
    assert framework.robot == {
        "task": "Framework task",
        "tasks": ["Run all", "As list", "Framework task"],
        "artifactsDir": "output",
        "path": ["bin"],
        "pythonpath": ["libraries", "."],
    }
    assert framework.parameters == {} and framework.entrypoint is None


def test_the_environment_file_is_the_first_that_fits_this_machine() -> None:
    spec = parse_robot(ROBOT, files().get, "bot", "Run all")
    assert spec.dependencies is not None and spec.dependencies.source == "conda.yaml"
    assert spec.dependencies.requirements == ("robocorp-tasks==4.1.1",)
    named = "condaConfigFile: other.yaml\n" + ROBOT.replace("environmentConfigs", "unused")
    other = parse_robot(named, files(**{"other.yaml": CONDA}).get, "bot", "Run all")
    assert other.dependencies is not None and other.dependencies.source == "other.yaml"


def test_a_task_must_be_chosen_among_several_and_exist() -> None:
    with pytest.raises(InvalidManifest) as unchosen:
        parse_robot(ROBOT, files().get, "bot", None)
    assert unchosen.value.problems[0]["code"] == "task_required"
    assert "'Run all'" in unchosen.value.problems[0]["detail"]
    with pytest.raises(InvalidManifest) as missing:
        parse_robot(ROBOT, files().get, "bot", "Nope")
    assert "no task 'Nope'" in missing.value.problems[0]["detail"]
    only = "tasks:\n  Only:\n    shell: python a.py\nartifactsDir: out\n"
    assert parse_robot(only, {}.get, "bot", None).robot["task"] == "Only"  # type: ignore[index]


def test_every_problem_is_named() -> None:
    text = (
        'tasks:\n  A:\n    shell: "python \'unclosed"\n  B:\n    command: []\n'
        "artifactsDir: ../out\nPYTHONPATH: [/abs]\npreRunScripts: [x.sh]\n"
        "condaConfigFile: conda.yaml\n"
    )
    with pytest.raises(InvalidManifest) as refused:
        parse_robot(text, {"conda.yaml": "dependencies: [\n"}.get, "bad name!", "A")
    found = sorted((p["file"], p["name"]) for p in refused.value.problems)
    assert found == [
        ("conda.yaml", ""),
        ("robot.yaml", "PYTHONPATH"),
        ("robot.yaml", "artifactsDir"),
        ("robot.yaml", "name"),
        ("robot.yaml", "preRunScripts"),
        ("robot.yaml", "tasks.A"),
    ]


def test_a_folder_is_runplane_toml_first_then_robot_yaml() -> None:
    manifest = '[process]\nname = "p"\nentrypoint = "m:f"\n'
    assert read_folder({"runplane.toml": manifest, **files()}.get, "x", None).name == "p"
    assert read_folder(files().get, "robot-x", "Run all").name == "robot-x"
    with pytest.raises(InvalidBundle):
        read_folder({"main.py": ""}.get, "x", None)
