"""runplane.toml: parsed, validated, every problem named by file and key."""

from __future__ import annotations

import pytest

from runplane.domain.errors import InvalidManifest
from runplane.domain.params import ParamType
from runplane.manifest import parse_duration, parse_manifest

GOOD = """
[process]
name = "invoice-bot"
entrypoint = "bot:main"
timeout = "10m"
retries = 2

[parameters.invoice_id]
type = "string"
required = true

[parameters.amount]
type = "number"
default = 0

[outputs.total]
type = "number"
"""


def test_a_good_manifest_parses() -> None:
    spec = parse_manifest(GOOD)
    assert spec.name == "invoice-bot"
    assert spec.timeout_seconds == 600 and spec.retries == 2
    assert spec.parameters["invoice_id"].required
    assert spec.parameters["amount"].type is ParamType.NUMBER
    assert spec.parameters["amount"].default == 0 and spec.parameters["amount"].has_default
    assert spec.outputs == {"total": {"type": "number"}}


def test_spec_round_trips_through_its_stored_form() -> None:
    spec = parse_manifest(GOOD)
    from runplane.manifest import ProcessSpec

    assert ProcessSpec.from_dict(spec.to_dict(), spec.secret_defaults()) == spec


def test_every_problem_is_named_with_file_and_key() -> None:
    bad = """
[process]
name = "bad name"
timeout = "soon"
retries = -1
colour = "blue"

[parameters.n]
type = "text"

[parameters.m]
type = "integer"
default = "x"
"""
    with pytest.raises(InvalidManifest) as info:
        parse_manifest(bad)
    keys = {p["name"]: p["code"] for p in info.value.problems}
    assert keys == {
        "process.name": "invalid",
        "process.timeout": "invalid",
        "process.retries": "invalid",
        "process.colour": "unknown_key",
        "process": "invalid",
        "parameters.n.type": "invalid",
        "parameters.m.default": "wrong_type",
    }
    assert all(p["file"] == "runplane.toml" for p in info.value.problems)


def test_toml_syntax_error_is_reported_with_its_position() -> None:
    with pytest.raises(InvalidManifest) as info:
        parse_manifest("[process\nname=")
    assert info.value.problems[0]["code"] == "toml_syntax"
    assert "line" in info.value.problems[0]["detail"]


def test_both_entrypoint_and_command_is_refused() -> None:
    with pytest.raises(InvalidManifest) as info:
        parse_manifest('[process]\nname="x"\nentrypoint="a:b"\ncommand=["x"]\n')
    assert [p["name"] for p in info.value.problems] == ["process"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("1h30m", 5400), ("500ms", 0.5), (90, 90)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "-5s", "0s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_duration(text)


def test_default_beyond_64_bits_is_refused() -> None:
    with pytest.raises(InvalidManifest) as info:
        parse_manifest(
            '[process]\nname="x"\nentrypoint="a:b"\n[parameters.n]\ntype="integer"\n'
            "default = 99999999999999999999999\n"
        )
    assert [(p["name"], p["code"]) for p in info.value.problems] == [
        ("parameters.n.default", "out_of_range")
    ]


def test_preload_is_off_unless_asked_for_and_kept_with_the_version() -> None:
    assert parse_manifest(GOOD).preload is False
    spec = parse_manifest(GOOD.replace("retries = 2\n", "retries = 2\npreload = true\n"))
    assert spec.preload is True
    from runplane.manifest import ProcessSpec

    assert ProcessSpec.from_dict(spec.to_dict(), spec.secret_defaults()).preload is True


def test_a_command_cannot_be_preloaded() -> None:
    text = '[process]\nname = "sh"\ncommand = ["./run.sh"]\npreload = true\n'
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(text)
    assert [(p["name"], p["detail"]) for p in caught.value.problems] == [
        ("process.preload", "needs an entrypoint: a command cannot be preloaded")
    ]
