"""Boomi's wire forms without a server: QueryFilter translation, query tokens,
ExecutionRequest parsing, XML rendering, dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from xml.etree import ElementTree

import pytest

from runplane.api.compat.boomi import formats, mapping, query, trigger
from runplane.domain import errors
from runplane.domain.filters import EVERYTHING, NOTHING, AllOf, AnyOf, Condition, Field, Not, Op
from runplane.domain.states import Status

T = datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def simple(prop: str, operator: str, *arguments: str) -> dict[str, object]:
    return {"argument": list(arguments), "operator": operator, "property": prop}


def parsed(expression: object) -> object:
    return query.parse({"QueryFilter": {"expression": expression}}).matching


def test_an_empty_query_matches_everything_newest_first() -> None:
    q = query.parse({})
    assert q.matching == EVERYTHING and q.newest_first


def test_equalities_translate_to_conditions_on_ids_and_names() -> None:
    run_id = "01a20992-42af-7076-92b9-b6edad73e7c5"
    assert parsed(simple("executionId", "EQUALS", f"execution-{run_id}")) == Condition(
        Field.ID, Op.IN, (run_id,)
    )
    assert parsed(simple("executionId", "EQUALS", "execution-bogus")) == NOTHING
    assert parsed(simple("status", "EQUALS", "ERROR")) == Condition(
        Field.STATUS, Op.IN, (Status.FAILED, Status.TIMED_OUT)
    )
    assert parsed(simple("status", "NOT_EQUALS", "COMPLETE_WARN")) == Not(
        Condition(Field.STATUS, Op.IN, ())
    )
    assert parsed(simple("processId", "EQUALS", "bot")) == AnyOf(
        (
            Condition(Field.PROCESS_ID, Op.IN, ("bot",)),
            Condition(Field.PROCESS_NAME, Op.IN, ("bot",)),
        )
    )
    assert parsed(simple("executionType", "EQUALS", "exec_manual")) == EVERYTHING
    assert parsed(simple("executionType", "EQUALS", "exec_sched")) == NOTHING


def test_times_compare_at_whole_seconds() -> None:
    text = "2025-01-31T23:59:59Z"
    at = Field.CREATED_AT
    assert parsed(simple("executionTime", "EQUALS", text)) == AllOf(
        (Condition(at, Op.GE, (T,)), Condition(at, Op.LT, (T + SECOND,)))
    )
    assert parsed(simple("executionTime", "BETWEEN", "2025-01-01T00:00:00Z", text)) == AllOf(
        (
            Condition(at, Op.GE, (datetime(2025, 1, 1, tzinfo=UTC),)),
            Condition(at, Op.LT, (T + SECOND,)),
        )
    )
    assert parsed(simple("recordedDate", "GREATER_THAN", text)) == Condition(
        Field.UPDATED_AT, Op.GE, (T + SECOND,)
    )
    assert parsed(simple("executionTime", "LESS_THAN_OR_EQUAL", "2025-01-31T23:59:59.5Z")) == (
        Condition(at, Op.LT, (T + SECOND,))
    )


def test_groups_nest_and_sorting_may_be_oldest_first() -> None:
    q = query.parse(
        {
            "QueryFilter": {
                "expression": {
                    "operator": "and",
                    "nestedExpression": [
                        simple("atomName", "EQUALS", "production"),
                        {
                            "operator": "OR",
                            "nestedExpression": simple("processName", "EQUALS", "a"),
                        },
                    ],
                }
            },
            "QuerySort": {"sortField": [{"fieldName": "executionTime", "sortOrder": "ASC"}]},
        }
    )
    assert q.matching == AllOf(
        (
            Condition(Field.ENVIRONMENT_NAME, Op.IN, ("production",)),
            AnyOf((Condition(Field.PROCESS_NAME, Op.IN, ("a",)),)),
        )
    )
    assert not q.newest_first


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        (simple("processName", "CONTAINS", "a"), "expression.operator"),
        (simple("launcherId", "EQUALS", "a"), "expression.property"),
        (simple("status", "EQUALS", "A", "B"), "expression.argument"),
        (simple("status", "EQUALS", "DONE"), "status"),
        (simple("processName", "EQUALS", "a\x00b"), "expression.argument"),
        (simple("executionTime", "LESS_THAN_OR_EQUAL", "9999-12-31T23:59:59Z"), "argument"),
        ({"operator": "and", "nestedExpression": ["x"]}, "expression.nestedExpression[0]"),
        ({"operator": "and", "nestedExpression": [{"property": "status"}]}, "operator"),
        (
            {"operator": "or", "nestedExpression": [simple("status", "EQUALS", "ERROR")] * 101},
            "expression.nestedExpression[99]",
        ),
    ],
)
def test_what_is_not_supported_is_named(expression: object, named: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        parsed(expression)
    assert caught.value.status == 400
    assert caught.value.problems[0]["name"].endswith(named)


def test_query_tokens_round_trip_and_refuse_forgeries() -> None:
    q = query.parse({"QueryFilter": {"expression": simple("processName", "EQUALS", "a")}})
    again, cursor = query.from_token(query.token(q, "abc"))
    assert (again.matching, cursor) == (q.matching, "abc")
    truncated = query.token(query.parse({}), "x")[:-3]
    for bad in ("", "%%%", "e30", truncated):
        with pytest.raises(errors.BadRequest):
            query.from_token(bad)


def test_execution_request_properties_map_by_name_and_key() -> None:
    wanted = trigger.from_document(
        {
            "@type": "ExecutionRequest",
            "atomId": "production",
            "processName": "bot",
            "DynamicProcessProperties": {
                "DynamicProcessProperty": {"@type": "X", "name": "a", "value": "1"}
            },
            "ProcessProperties": {
                "ProcessProperty": [
                    {
                        "componentId": "c",
                        "ProcessPropertyValue": [
                            {"key": "a", "value": "2"},
                            {"key": "b", "value": None},
                            {"key": "c", "value": "x", "useDefault": "true"},
                        ],
                    }
                ]
            },
        }
    )
    assert (wanted.atom, wanted.process, wanted.process_id) == ("production", "bot", None)
    assert wanted.properties == {"a": "2"}


def test_xml_requests_read_attributes_or_child_elements_in_any_namespace() -> None:
    raw = b"""<bns:ExecutionRequest xmlns:bns="http://api.platform.boomi.com/" atomId="prod">
      <bns:processId>p-1</bns:processId>
      <bns:DynamicProcessProperties>
        <bns:DynamicProcessProperty name="a" value="1"/>
        <bns:DynamicProcessProperty><bns:name>b</bns:name><bns:value/></bns:DynamicProcessProperty>
      </bns:DynamicProcessProperties>
    </bns:ExecutionRequest>"""
    wanted = trigger.from_xml(formats.read_xml(raw))
    assert (wanted.atom, wanted.process_id) == ("prod", "p-1")
    assert wanted.properties == {"a": "1", "b": ""}


def test_xml_with_entities_or_doctype_is_refused() -> None:
    bomb = b'<!DOCTYPE r [<!ENTITY a "x">]><ExecutionRequest atomId="&a;"/>'
    with pytest.raises(errors.BadRequest):
        formats.read_xml(bomb)


def test_xml_answers_put_scalars_in_attributes_and_lists_in_typed_children() -> None:
    doc = {
        "@type": "QueryResult",
        "numberOfResults": 1,
        "result": [
            {"@type": "ExecutionRecord", "status": "ERROR", "executionDuration": ["Long", 5]}
        ],
    }
    root = ElementTree.fromstring(formats.to_xml(doc))
    assert root.tag == "{http://api.platform.boomi.com/}QueryResult"
    assert root.get("numberOfResults") == "1"
    (child,) = list(root)
    assert child.get("executionDuration") == "5" and child.get("status") == "ERROR"
    assert child.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "bns:ExecutionRecord"


def test_dates_are_utc_seconds_and_accept_decides_the_format() -> None:
    local = datetime(2025, 1, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert mapping.date(local) == "2025-01-31T21:59:59Z"
    assert formats.wants_xml("application/xml")
    assert not formats.wants_xml(None)
    assert not formats.wants_xml("application/json, application/xml")
    assert mapping.long(7, as_array=True) == ["Long", 7] and mapping.long(7, as_array=False) == 7


def test_errors_take_boomis_statuses() -> None:
    assert mapping.status_of(errors.ProcessNotDeployed()) == 400
    assert mapping.status_of(errors.InvalidInputArguments()) == 400
    assert mapping.status_of(errors.ProcessNotFound()) == 404
    assert mapping.status_of(errors.Forbidden()) == 403
    response = mapping.error_response(ValueError("boom"))
    assert response.status_code == 500 and b"boom" not in response.body
