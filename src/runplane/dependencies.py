"""A process version's Python dependencies, read from its folder; every problem named.

A folder declares them in one of three ways, looked for in this order unless
``[process] dependencies = "<file>"`` in runplane.toml names the file:

- ``requirements.txt``: one requirement per line (PEP 508, ``--hash`` options
  allowed), ``#`` comments, ``-r other.txt`` includes (inside the folder), and
  the index options ``--index-url``/``-i``, ``--extra-index-url``,
  ``--find-links``/``-f``, ``--no-index`` and ``--pre``;
- ``pyproject.toml``: the list ``[project].dependencies``;
- ``conda.yaml`` (Robocorp's ``condaConfigFile``): the ``pip:`` list under
  ``dependencies``, and ``python=X.Y[.Z]`` as the Python version to build with.
  Other conda packages have no PyPI equivalent a runtime could install: they
  are listed as ignored, and the build says so in the execution's log.

The result is stored with the version (``ProcessSpec.dependencies``); a runtime
builds one virtual environment per distinct set (runtime/environments.py).
Local paths and editable installs (``-e``, ``./pkg``, ``file:``) are refused:
an environment is shared by every version with the same set, so it cannot
point into one version's folder; constraints files (``-c``) are refused too.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

REQUIREMENTS_FILE = "requirements.txt"
PYPROJECT_FILE = "pyproject.toml"
CONDA_FILE = "conda.yaml"
SEARCH_ORDER = (REQUIREMENTS_FILE, PYPROJECT_FILE, CONDA_FILE)
MAX_REQUIREMENTS = 1000
MAX_LINE_CHARS = 4000
MAX_INCLUDE_DEPTH = 8

# options a requirements line may carry, with whether they take a value
_INDEX_OPTIONS = {
    "--index-url": True,
    "-i": True,
    "--extra-index-url": True,
    "--find-links": True,
    "-f": True,
    "--no-index": False,
    "--pre": False,
}
_REFUSED_OPTIONS = {
    "-e": "editable installs",
    "--editable": "editable installs",
    "-c": "constraints files",
    "--constraint": "constraints files",
}
_HASH_OPTION = re.compile(r"\s+--hash[=\s]\S+")
_LOCAL_PATH = re.compile(r"^(\.{1,2}/|/|file:|~)")
_CONDA_PYTHON = re.compile(r"^python\s*(==|=|>=|<=|~=|>|<)?\s*([0-9][0-9.*]*)\s*$")
_CONDA_PIP = re.compile(r"^pip\s*([=<>~!].*)?$")

Reader = Callable[[str], "str | None"]
"""The text of a file of the process folder by its relative POSIX path; None if absent."""


class DependencyError(ValueError):
    """Declared dependencies that cannot be used; ``problems`` names each one."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class Dependencies:
    """What to install into a version's environment, and with which Python."""

    source: str  # the file they were read from
    requirements: tuple[str, ...]  # lines of a requirements file, includes inlined
    python: str | None = None  # a version request for uv ("3.10.12"); None: the runtime's
    ignored: tuple[str, ...] = field(default=())  # conda packages not installed

    def key(self, default_python: str) -> str:
        """The environment's identity: this set and the Python it is built with."""
        doc = {"requirements": list(self.requirements), "python": self.python or default_python}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "requirements": list(self.requirements),
            "python": self.python,
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dependencies:
        return cls(
            source=str(data["source"]),
            requirements=tuple(str(r) for r in data["requirements"]),
            python=None if data.get("python") is None else str(data["python"]),
            ignored=tuple(str(p) for p in data.get("ignored", ())),
        )


def read_dependencies(read: Reader, named: str | None = None) -> Dependencies | None:
    """The folder's declared dependencies (None: it declares none); DependencyError if bad.

    `named` is the file runplane.toml names; without it the first of SEARCH_ORDER
    that declares something is used (a pyproject.toml without
    ``[project].dependencies`` declares nothing).
    """
    if named is not None:
        text = read(named)
        if text is None:
            raise DependencyError(
                f"The dependencies file {named} is not in the process folder.",
                [_problem(named, "", "missing_file", "the file does not exist")],
            )
        return _parse(read, named, text, required=True)
    for name in SEARCH_ORDER:
        text = read(name)
        if text is not None and (found := _parse(read, name, text, required=False)):
            return found
    return None


def _parse(read: Reader, name: str, text: str, *, required: bool) -> Dependencies | None:
    base = PurePosixPath(name).name
    if base.endswith((".yaml", ".yml")):
        return _conda(name, text)
    if base.endswith(".toml"):
        return _pyproject(name, text, required=required)
    return _requirements(read, name, text)


def _problem(file: str, name: str, code: str, detail: str) -> dict[str, Any]:
    return {"file": file, "name": name, "code": code, "detail": detail}


def _raise(problems: list[dict[str, Any]]) -> None:
    if problems:
        files = sorted({p["file"] for p in problems})
        raise DependencyError(
            f"{len(problems)} problem(s) with the declared dependencies in {', '.join(files)}.",
            problems,
        )


def _requirements(read: Reader, name: str, text: str) -> Dependencies:
    problems: list[dict[str, Any]] = []
    lines: list[str] = []
    _read_requirements(read, name, text, lines, problems, depth=0, seen=(name,))
    if len(lines) > MAX_REQUIREMENTS:
        problems.append(
            _problem(name, "", "too_many", f"more than {MAX_REQUIREMENTS} requirements")
        )
    _raise(problems)
    return Dependencies(source=name, requirements=tuple(lines))


def _read_requirements(
    read: Reader,
    name: str,
    text: str,
    out: list[str],
    problems: list[dict[str, Any]],
    *,
    depth: int,
    seen: tuple[str, ...],
    label: Callable[[int], str] = "line {}".format,
) -> None:
    from packaging.requirements import InvalidRequirement, Requirement

    for number, line in _logical_lines(text):
        where = label(number)
        if len(line) > MAX_LINE_CHARS:
            problems.append(_problem(name, where, "too_long", "the line is too long"))
            continue
        if line.startswith("-"):
            option, _, value = line.replace("=", " ", 1).partition(" ")
            value = value.strip()
            if option in ("-r", "--requirement"):
                target = _inside(name, value)
                if target is None or depth >= MAX_INCLUDE_DEPTH or target in seen:
                    why = "an include must name a file inside the folder, without a cycle"
                    problems.append(_problem(name, where, "bad_include", why))
                    continue
                included = read(target)
                if included is None:
                    problems.append(
                        _problem(name, where, "missing_file", f"{target} does not exist")
                    )
                    continue
                _read_requirements(
                    read, target, included, out, problems, depth=depth + 1, seen=(*seen, target)
                )
            elif option in _REFUSED_OPTIONS:
                problems.append(
                    _problem(
                        name,
                        where,
                        "unsupported_option",
                        f"{_REFUSED_OPTIONS[option]} ({option}) are not supported: "
                        "list the requirements themselves",
                    )
                )
            elif option in _INDEX_OPTIONS:
                if _INDEX_OPTIONS[option] and not value:
                    problems.append(
                        _problem(name, where, "missing_value", f"{option} needs a value")
                    )
                else:
                    out.append(line)
            else:
                problems.append(
                    _problem(name, where, "unsupported_option", f"unknown option {option}")
                )
            continue
        requirement = _HASH_OPTION.sub("", line).strip()
        if _LOCAL_PATH.match(requirement) or requirement.startswith("-"):
            problems.append(
                _problem(
                    name,
                    where,
                    "local_path",
                    "local paths are not supported: an environment is shared by versions",
                )
            )
            continue
        try:
            Requirement(requirement)
        except InvalidRequirement as exc:
            problems.append(_problem(name, where, "invalid_requirement", str(exc)))
            continue
        out.append(line)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) without comments or blanks; backslash continuations joined."""
    lines: list[tuple[int, str]] = []
    pending, first = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0]
        line = "" if line.lstrip().startswith("#") else line.strip()
        if not pending:
            first = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            lines.append((first, line))
    if pending.strip():
        lines.append((first, pending.strip()))
    return lines


def _inside(name: str, target: str) -> str | None:
    """`target` relative to the file `name`, as a folder path; None if it leaves it."""
    if not target or target.startswith("/"):
        return None
    parts: list[str] = list(PurePosixPath(name).parent.parts)
    for part in PurePosixPath(target).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts) or None


def _pyproject(name: str, text: str, *, required: bool) -> Dependencies | None:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DependencyError(
            f"{name} is not valid TOML: {exc}", [_problem(name, "", "toml_syntax", str(exc))]
        ) from exc
    project = raw.get("project")
    listed = project.get("dependencies") if isinstance(project, dict) else None
    if listed is None:
        if required:
            raise DependencyError(
                f"{name} has no [project].dependencies.",
                [_problem(name, "project.dependencies", "missing_key", "required key is missing")],
            )
        return None
    problems: list[dict[str, Any]] = []
    if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
        problems.append(
            _problem(name, "project.dependencies", "wrong_type", "must be a list of strings")
        )
        listed = []
    for i, requirement in enumerate(listed):
        try:
            Requirement(requirement)
        except InvalidRequirement as exc:
            problems.append(
                _problem(name, f"project.dependencies[{i}]", "invalid_requirement", str(exc))
            )
    _raise(problems)
    return Dependencies(source=name, requirements=tuple(r.strip() for r in listed))


def _conda(name: str, text: str) -> Dependencies:
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DependencyError(
            f"{name} is not valid YAML: {exc}", [_problem(name, "", "yaml_syntax", str(exc))]
        ) from exc
    listed = raw.get("dependencies") if isinstance(raw, dict) else None
    if not isinstance(listed, list):
        raise DependencyError(
            f"{name} has no list of dependencies.",
            [_problem(name, "dependencies", "missing_key", "a list of dependencies is required")],
        )
    problems: list[dict[str, Any]] = []
    python: str | None = None
    pip: list[str] = []
    ignored: list[str] = []
    for i, entry in enumerate(listed):
        where = f"dependencies[{i}]"
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            entries = entry["pip"] or []
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                problems.append(_problem(name, f"{where}.pip", "wrong_type", "must be a list"))
                continue
            pip.extend(e.strip() for e in entries)
        elif isinstance(entry, str | int | float):
            text_entry = str(entry).strip()
            if match := _CONDA_PYTHON.match(text_entry):
                operator, version = match.group(1), match.group(2).rstrip(".*")
                python = version if operator in (None, "=", "==") else f"{operator}{version}"
            elif not _CONDA_PIP.match(text_entry):
                ignored.append(text_entry)
        else:
            problems.append(
                _problem(name, where, "wrong_type", "must be a package or a 'pip:' list")
            )
    _raise(problems)
    requirements: list[str] = []
    _read_requirements(
        lambda _: None,
        name,
        "\n".join(pip),
        requirements,
        problems,
        depth=0,
        seen=(name,),
        label=lambda number: f"dependencies.pip[{number - 1}]",
    )
    _raise(problems)
    return Dependencies(
        source=name, requirements=tuple(requirements), python=python, ignored=tuple(ignored)
    )
