"""Effective inputs: defaults, run configuration, request; every problem named."""

from __future__ import annotations

from runplane.domain.params import (
    MASK,
    Parameter,
    ParamType,
    effective_inputs,
    fingerprint,
    from_text,
    split_secrets,
)

PARAMS = {
    "name": Parameter("name", ParamType.STRING, default="world", has_default=True),
    "amount": Parameter("amount", ParamType.NUMBER, required=True),
    "count": Parameter("count", ParamType.INTEGER, default=1, has_default=True),
    "flag": Parameter("flag", ParamType.BOOLEAN),
    "token": Parameter("token", ParamType.SECRET),
    "tags": Parameter("tags", ParamType.ARRAY),
    "meta": Parameter("meta", ParamType.OBJECT),
}


def test_request_overlays_run_configuration_overlays_defaults() -> None:
    inputs, problems = effective_inputs(
        PARAMS, {"name": "cfg", "count": 5}, {"amount": 2, "count": 7}
    )
    assert problems == []
    assert inputs == {"name": "cfg", "count": 7, "amount": 2}


def test_every_problem_is_listed_by_parameter_name() -> None:
    _, problems = effective_inputs(
        PARAMS, {}, {"name": 5, "count": "x", "flag": 1, "bogus": True, "tags": {}, "meta": []}
    )
    by_name = {p["name"]: p["code"] for p in problems}
    assert by_name == {
        "name": "wrong_type",
        "count": "wrong_type",
        "flag": "wrong_type",
        "bogus": "unknown_parameter",
        "tags": "wrong_type",
        "meta": "wrong_type",
        "amount": "missing_required",
    }


def test_booleans_are_not_numbers_and_whole_floats_are_integers() -> None:
    _, problems = effective_inputs(PARAMS, {}, {"amount": True})
    assert [p["code"] for p in problems] == ["wrong_type"]
    inputs, problems = effective_inputs(PARAMS, {}, {"amount": 1, "count": 3.0})
    assert problems == [] and inputs["count"] == 3 and isinstance(inputs["count"], int)


def test_secrets_are_split_out_and_masked() -> None:
    public, secret = split_secrets(PARAMS, {"name": "a", "token": "s3cr3t"})
    assert public == {"name": "a", "token": MASK}
    assert secret == {"token": "s3cr3t"}


def test_fingerprint_ignores_key_order_but_not_values_or_environment() -> None:
    a = fingerprint("env", {"a": 1, "b": 2})
    assert a == fingerprint("env", {"b": 2, "a": 1})
    assert a != fingerprint("env", {"a": 1, "b": 3})
    assert a != fingerprint("other", {"a": 1, "b": 2})


def test_integers_beyond_64_bits_are_named_anywhere_in_a_value() -> None:
    from runplane.domain.params import out_of_range

    got = out_of_range({"a": 2**70, "b": {"deep": [1, -(2**64)]}, "c": 2**63, "d": True})
    assert [p["name"] for p in got] == ["a", "b"]
    assert all(p["code"] == "out_of_range" for p in got)


def test_text_values_convert_to_the_declared_types() -> None:
    values, problems = from_text(
        PARAMS,
        {
            "name": " 42 ",
            "amount": "-1.5e2",
            "count": " +7 ",
            "flag": "TRUE",
            "token": "007",
            "tags": '["a", 1]',
            "meta": '{"k": {"n": null}}',
            "unknown": "kept",
        },
    )
    assert problems == []
    assert values == {
        "name": " 42 ",
        "amount": -150.0,
        "count": 7,
        "flag": True,
        "token": "007",
        "tags": ["a", 1],
        "meta": {"k": {"n": None}},
        "unknown": "kept",
    }
    assert from_text(PARAMS, {"amount": "3", "flag": "false"})[0] == {"amount": 3, "flag": False}


def test_text_that_does_not_convert_is_named_and_left_out() -> None:
    values, problems = from_text(
        PARAMS,
        {
            "count": "1.5",
            "amount": "NaN",
            "flag": "yes",
            "tags": '{"not": "a list"}',
            "meta": "{broken",
            "name": "fine",
        },
    )
    assert values == {"name": "fine"}
    assert {p["name"]: p["code"] for p in problems} == {
        name: "not_convertible" for name in ("count", "amount", "flag", "tags", "meta")
    }
    assert "Expected integer, got '1.5'" in problems[0]["detail"]


def test_text_conversion_refuses_what_json_storage_cannot_hold() -> None:
    _, problems = from_text(PARAMS, {"amount": "1e400", "meta": '{"x": NaN}'})
    assert sorted(p["name"] for p in problems) == ["amount", "meta"]


def test_empty_text_means_not_given_except_for_strings() -> None:
    values, problems = from_text(PARAMS, {"count": "", "flag": "  ", "name": ""})
    assert problems == [] and values == {"name": ""}
    inputs, problems = effective_inputs(PARAMS, {}, {**values, "amount": 1})
    assert problems == [] and inputs["count"] == 1


def test_values_that_are_not_text_pass_unchanged_for_the_usual_check() -> None:
    values, problems = from_text(PARAMS, {"count": 3, "flag": None})
    assert problems == [] and values == {"count": 3, "flag": None}
    long_text = "x" * 100
    _, problems = from_text(PARAMS, {"count": long_text})
    assert len(problems[0]["detail"]) < 80
