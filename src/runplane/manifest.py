"""The process manifest, `runplane.toml`: parsed, validated, every problem named.

```toml
[process]
name = "invoice-bot"
entrypoint = "bot:main"     # a Python callable; or command = ["./run.sh"]
timeout = "10m"
retries = 0
preload = false             # true: import the module once per runtime, fork each run from it
dependencies = "requirements.txt"  # optional: the file declaring them (see dependencies.py)

[parameters.invoice_id]
type = "string"             # string | integer | number | boolean | object | array | secret
required = true

[outputs.total]
type = "number"

[[schedules]]               # optional: timetables each deployment starts with
name = "weekday-mornings"
cron = "0 8 * * 1-5"
timezone = "Europe/Berlin"  # default UTC
missed = "skip"             # or "last": run the latest due time missed while down
inputs = { invoice_id = "all" }
```

Used by the CLI (to refuse a bad folder before uploading it) and by the server
(the authority: it re-reads the manifest from the uploaded bundle).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runplane.dependencies import Dependencies, DependencyError, Reader, read_dependencies
from runplane.domain.errors import InvalidManifest
from runplane.domain.params import (
    Parameter,
    ParamType,
    check_values,
    json_type_name,
    matches,
    out_of_range,
)
from runplane.domain.schedules import NAME_RE as SCHEDULE_NAME_RE
from runplane.domain.schedules import check_cron, check_timezone

MANIFEST_FILE = "runplane.toml"
DEFAULT_TIMEOUT_SECONDS = 3600.0
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MAX_RETRIES = 20

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
ENTRYPOINT_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration: a number of seconds, or "90s", "10m", "1h30m", "500ms"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().replace(" ", "")
        parts = _DURATION_PART_RE.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{value!r} is not a duration such as 30s, 10m or 1h")
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0 or seconds > MAX_TIMEOUT_SECONDS:
        raise ValueError(f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:.0f} seconds")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _ProcessSection(_Strict):
    name: str
    entrypoint: str | None = None
    command: list[str] | None = None
    timeout: str | int | float = DEFAULT_TIMEOUT_SECONDS
    retries: int = Field(default=0, ge=0, le=MAX_RETRIES)
    description: str = ""
    preload: bool = False
    dependencies: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                "must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return v

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, v: str | None) -> str | None:
        if v is not None and not ENTRYPOINT_RE.match(v):
            raise ValueError("must be 'module:function', e.g. 'bot:main'")
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or not v[0]):
            raise ValueError("must be a non-empty list, e.g. ['./run.sh']")
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str | int | float) -> float:
        return parse_duration(v)


class _ParameterSection(_Strict):
    type: ParamType = Field(strict=False)
    required: bool = False
    default: Any = None
    description: str = ""


class _ScheduleSection(_Strict):
    name: str
    cron: str
    timezone: str = "UTC"
    missed: str = "skip"
    enabled: bool = True
    inputs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SCHEDULE_NAME_RE.match(v):
            raise ValueError("must be 1-100 letters, digits, '.', '_' or '-'")
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if (why := check_cron(v)) is not None:
            raise ValueError(why)
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        if (why := check_timezone(v)) is not None:
            raise ValueError(why)
        return v

    @field_validator("missed")
    @classmethod
    def _missed(cls, v: str) -> str:
        if v not in ("skip", "last"):
            raise ValueError("must be 'skip' or 'last'")
        return v


class _OutputSection(_Strict):
    type: ParamType = Field(strict=False)
    description: str = ""


@dataclass(frozen=True)
class ProcessSpec:
    """What a process version declares: how to run it, its parameters and outputs."""

    name: str
    entrypoint: str | None
    command: list[str] | None
    timeout_seconds: float
    retries: int
    parameters: dict[str, Parameter]
    outputs: dict[str, dict[str, Any]]
    description: str = ""
    preload: bool = False  # import the entry point's module once per runtime; fork from it
    dependencies: Dependencies | None = None  # installed into the version's own environment
    schedules: tuple[dict[str, Any], ...] = ()  # [[schedules]]: created at each deployment
    robot: dict[str, Any] | None = None  # a Robocorp robot's task and folders (robot.py)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored with the version (secret defaults masked)."""
        return {
            "name": self.name,
            "entrypoint": self.entrypoint,
            "command": self.command,
            "timeoutSeconds": self.timeout_seconds,
            "retries": self.retries,
            "description": self.description,
            "preload": self.preload,
            "dependencies": None if self.dependencies is None else self.dependencies.to_dict(),
            "schedules": list(self.schedules),
            "robot": self.robot,
            "parameters": [p.to_dict() for p in self.parameters.values()],
            "outputs": [{"name": k, **v} for k, v in self.outputs.items()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], secret_defaults: dict[str, Any]) -> ProcessSpec:
        """Rebuild a spec from its stored JSON form and its stored secret defaults."""
        params = {
            p["name"]: Parameter.from_dict(p, secret_default=secret_defaults.get(p["name"]))
            for p in data["parameters"]
        }
        outputs = {o["name"]: {k: v for k, v in o.items() if k != "name"} for o in data["outputs"]}
        return cls(
            name=data["name"],
            entrypoint=data["entrypoint"],
            command=data["command"],
            timeout_seconds=float(data["timeoutSeconds"]),
            retries=int(data["retries"]),
            parameters=params,
            outputs=outputs,
            description=data.get("description", ""),
            preload=bool(data.get("preload", False)),
            dependencies=(
                Dependencies.from_dict(data["dependencies"]) if data.get("dependencies") else None
            ),
            schedules=tuple(data.get("schedules") or ()),
            robot=data.get("robot"),
        )

    def secret_defaults(self) -> dict[str, Any]:
        """Defaults of secret parameters, kept apart from the public spec."""
        return {
            p.name: p.default
            for p in self.parameters.values()
            if p.type is ParamType.SECRET and p.has_default
        }


def _problem(key: str, detail: str, code: str = "invalid") -> dict[str, Any]:
    return {"file": MANIFEST_FILE, "name": key, "code": code, "detail": detail}


def _validate(model: type[_Strict], data: Any, prefix: str, problems: list[dict[str, Any]]) -> Any:
    """Validate one section, adding its problems (with full key paths) to `problems`."""
    if not isinstance(data, dict):
        problems.append(_problem(prefix, "must be a table", "wrong_type"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join([prefix, *(str(p) for p in err["loc"])])
            msg, code = err["msg"].removeprefix("Value error, "), "invalid"
            if err["type"] == "extra_forbidden":
                msg, code = "unknown key", "unknown_key"
            elif err["type"] == "missing":
                msg, code = "required key is missing", "missing_key"
            problems.append(_problem(key, msg, code))
        return None


def parse_manifest(text: str, read: Reader | None = None) -> ProcessSpec:
    """Parse and validate a runplane.toml; InvalidManifest lists every problem.

    `read` gives the other files of the process folder: with it, the declared
    dependencies are read (and checked) too; without it there are none.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidManifest(
            f"{MANIFEST_FILE} is not valid TOML: {exc}",
            problems=[_problem("", str(exc), "toml_syntax")],
        ) from exc
    problems: list[dict[str, Any]] = []
    for key in sorted(set(raw) - {"process", "parameters", "outputs", "schedules"}):
        problems.append(_problem(key, "unknown key", "unknown_key"))
    if "process" not in raw:
        problems.append(_problem("process", "required table [process] is missing", "missing_key"))
    raw_process = raw.get("process", {})
    proc = _validate(_ProcessSection, raw_process, "process", problems)
    if isinstance(raw_process, dict) and ("entrypoint" in raw_process) == (
        "command" in raw_process
    ):
        problems.append(_problem("process", "set exactly one of 'entrypoint' or 'command'"))
        proc = None
    if proc is not None and proc.preload and proc.entrypoint is None:
        problems.append(
            _problem("process.preload", "needs an entrypoint: a command cannot be preloaded")
        )
        proc = None
    params: dict[str, Parameter] = {}
    raw_params = raw.get("parameters", {})
    if not isinstance(raw_params, dict):
        problems.append(_problem("parameters", "must be a table of tables", "wrong_type"))
        raw_params = {}
    for pname, pdata in raw_params.items():
        key = f"parameters.{pname}"
        if not PARAM_NAME_RE.match(pname):
            problems.append(_problem(key, "parameter names must be Python identifiers"))
        p = _validate(_ParameterSection, pdata, key, problems)
        if p is None:
            continue
        has_default = "default" in p.model_fields_set
        default = p.default
        if has_default and p.type is ParamType.INTEGER and isinstance(default, float):
            default = int(default) if default.is_integer() else default
        if has_default and out_of_range({pname: default}):
            problems.append(
                _problem(f"{key}.default", "integers must fit in 64 bits", "out_of_range")
            )
        elif has_default and not matches(p.type, p.default):
            problems.append(
                _problem(
                    f"{key}.default",
                    f"default is {json_type_name(p.default)}, declared {p.type.value}",
                    "wrong_type",
                )
            )
        params[pname] = Parameter(
            name=pname,
            type=p.type,
            required=p.required,
            default=default,
            has_default=has_default,
            description=p.description,
        )
    outputs: dict[str, dict[str, Any]] = {}
    raw_outputs = raw.get("outputs", {})
    if not isinstance(raw_outputs, dict):
        problems.append(_problem("outputs", "must be a table of tables", "wrong_type"))
        raw_outputs = {}
    for oname, odata in raw_outputs.items():
        key = f"outputs.{oname}"
        if not PARAM_NAME_RE.match(oname):
            problems.append(_problem(key, "output names must be identifiers"))
        o = _validate(_OutputSection, odata, key, problems)
        if o is not None:
            outputs[oname] = {"type": o.type.value}
            if o.description:
                outputs[oname]["description"] = o.description
    schedules: list[dict[str, Any]] = []
    raw_schedules = raw.get("schedules", [])
    if not isinstance(raw_schedules, list):
        problems.append(_problem("schedules", "must be an array of tables", "wrong_type"))
        raw_schedules = []
    seen: set[str] = set()
    for i, sdata in enumerate(raw_schedules):
        key = f"schedules[{i}]"
        sched = _validate(_ScheduleSection, sdata, key, problems)
        if sched is None:
            continue
        if sched.name in seen:
            problems.append(_problem(f"{key}.name", "another schedule has this name"))
        seen.add(sched.name)
        for problem in check_values(params, sched.inputs):
            problems.append(
                _problem(f"{key}.inputs.{problem['name']}", problem["detail"], problem["code"])
            )
        schedules.append(sched.model_dump())
    dependencies = None
    if read is not None:
        try:
            dependencies = read_dependencies(read, proc.dependencies if proc else None)
        except DependencyError as exc:
            problems.extend(exc.problems)
    if problems or proc is None:
        names = ", ".join(
            (p["name"] or MANIFEST_FILE)
            if p["file"] == MANIFEST_FILE
            else f"{p['file']} {p['name']}".strip()
            for p in problems
        )
        raise InvalidManifest(
            f"{MANIFEST_FILE} has {len(problems)} problem(s): {names}.", problems=problems
        )
    return ProcessSpec(
        name=proc.name,
        entrypoint=proc.entrypoint,
        command=proc.command,
        timeout_seconds=float(proc.timeout),
        retries=proc.retries,
        description=proc.description,
        preload=proc.preload,
        parameters=params,
        outputs=outputs,
        dependencies=dependencies,
        schedules=tuple(schedules),
    )
