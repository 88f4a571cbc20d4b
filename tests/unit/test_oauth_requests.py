"""Token endpoint request parsing: HTTP Basic client authentication (RFC 6749 §2.3.1), bodies."""

from __future__ import annotations

import base64

import pytest

from runplane.api.oauth.router import client_credentials, decode_basic, oauth_error, parse_params
from runplane.domain import errors

FORM = "application/x-www-form-urlencoded"


def basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


def test_basic_parts_are_form_urldecoded_after_splitting_on_the_first_colon() -> None:
    # client id "my app:1", secret "p@ss+w/rd%:x", each form-urlencoded first
    header = basic("my+app%3A1:p%40ss%2Bw%2Frd%25%3Ax")
    assert decode_basic(header) == ("my app:1", "p@ss+w/rd%:x")


def test_basic_takes_unencoded_generated_credentials_as_they_are() -> None:
    assert decode_basic(basic("rpc_AbC-d_9:rpcs_x-Y_z")) == ("rpc_AbC-d_9", "rpcs_x-Y_z")
    # a raw ':' in the secret survives: only the first one separates
    assert decode_basic(basic("id:se:cret")) == ("id", "se:cret")
    assert decode_basic("basic   " + base64.b64encode(b"id:s").decode()) == ("id", "s")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer rpa_x",
        "Basic !!!",
        basic("no-colon"),
        basic(":secret"),
        basic("id:"),
        "Basic " + base64.b64encode(b"id:\xff").decode(),
    ],
)
def test_unusable_basic_credentials_are_invalid_client(header: str) -> None:
    with pytest.raises(errors.InvalidClient):
        decode_basic(header)


def test_client_credentials_come_from_the_header_or_the_body_not_both_differing() -> None:
    header = basic("id:secret")
    assert client_credentials(header, {}) == ("id", "secret")
    assert client_credentials(header, {"client_id": "id"}) == ("id", "secret")
    assert client_credentials(None, {"client_id": "id", "client_secret": "s"}) == ("id", "s")
    with pytest.raises(errors.BadRequest):
        client_credentials(header, {"client_id": "other"})
    with pytest.raises(errors.BadRequest):
        client_credentials(header, {"client_secret": "other"})
    with pytest.raises(errors.InvalidClient):
        client_credentials(None, {"client_id": "id"})


def test_form_and_json_bodies_give_the_same_parameters() -> None:
    want = {"grant_type": "client_credentials", "scope": "a b"}
    form = b"grant_type=client_credentials&scope=a+b&client_id="
    assert parse_params(form, FORM + "; charset=UTF-8") == want
    body = b'{"grant_type": "client_credentials", "scope": "a b", "client_id": null, "x": ""}'
    assert parse_params(body, "application/json") == want
    # no usable Content-Type: a body starting with '{' is JSON, anything else a form
    assert parse_params(body, None) == want
    assert parse_params(form, "text/plain") == want


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"grant_type=a&grant_type=b", FORM),
        (b'{"grant_type": "a", "grant_type": "b"}', "application/json"),
        (b'{"grant_type": ', "application/json"),
        (b'"grant_type"', "application/json"),
        (b'{"grant_type": ["client_credentials"]}', "application/json"),
        (b"grant_type=\xff", FORM),
        (b"&".join(b"p%d=1" % i for i in range(100)), FORM),
    ],
)
def test_malformed_bodies_are_bad_requests(body: bytes, content_type: str) -> None:
    with pytest.raises(errors.BadRequest):
        parse_params(body, content_type)


def test_domain_errors_map_onto_rfc_6749_error_codes() -> None:
    assert oauth_error(errors.InvalidClient()) == (401, "invalid_client")
    assert oauth_error(errors.InvalidScope()) == (400, "invalid_scope")
    assert oauth_error(errors.UnsupportedGrantType()) == (400, "unsupported_grant_type")
    assert oauth_error(errors.BadRequest()) == (400, "invalid_request")
    assert oauth_error(errors.InvalidRequest()) == (400, "invalid_request")
    assert oauth_error(errors.RunplaneError()) == (500, "server_error")
