from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runplane.runtime import logstream
from runplane.runtime.logstream import LogStream, SecretMasker, escaped_forms

SECRETS = ("hunter2", "hunt", "s3cr\net", "xyzzy")
ALPHABET = "hunter2s3cr\netxyzzy ab\n"


def feed_in_pieces(masker: SecretMasker, pieces: list[str], flush: bool) -> str:
    released = [masker.feed(piece, flush=flush) for piece in pieces]
    return "".join(released) + masker.finish()


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(c % (len(text) + 1) for c in cuts), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@given(
    text=st.text(alphabet=ALPHABET, max_size=80),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    flush=st.booleans(),
)
def test_masking_does_not_depend_on_where_the_stream_is_cut(
    text: str, cuts: list[int], flush: bool
) -> None:
    whole = SecretMasker(SECRETS).mask(text)
    assert feed_in_pieces(SecretMasker(SECRETS), split(text, cuts), flush) == whole


def test_a_secret_split_across_pieces_is_never_released_in_part() -> None:
    masker = SecretMasker(["hunter2"])
    assert masker.feed("password=hun", flush=True) == "password="
    assert masker.feed("ter2 ok\n") == "*** ok\n"


def test_a_partial_line_is_released_on_flush_except_a_possible_secret_start() -> None:
    masker = SecretMasker(["hunter2"])
    assert masker.feed("progress 10%") == ""
    assert masker.feed("", flush=True) == "progress 10%"
    assert masker.feed("progress 20% hu", flush=True) == "progress 20% "
    assert masker.finish() == "hu"


def test_no_secrets_means_text_passes_through() -> None:
    masker = SecretMasker(["", ""])
    assert masker.feed("a\nb", flush=True) == "a\nb"


def test_mask_json_masks_keys_and_nested_values() -> None:
    masker = SecretMasker(["hunter2"])
    value = {"pw": "hunter2", "hunter2": [1, "x hunter2 y", {"k": None}]}
    assert masker.mask_json(value) == {"pw": "***", "***": [1, "x *** y", {"k": None}]}


# A quote of each kind, a backslash and a non-ASCII letter: every escaping differs.
TRICKY = 'it\'s "w\\ö"'
TRICKY_PRINTED = {
    "print": TRICKY,
    "repr": repr(TRICKY),
    "repr in a dict": repr({"token": TRICKY}),
    "repr in a longer string": repr(f"say '{TRICKY}'"),
    "json.dumps": json.dumps(TRICKY),
    "json.dumps, not ASCII": json.dumps(TRICKY, ensure_ascii=False),
    "json.dumps in an object": json.dumps({"token": TRICKY}),
}
TRICKY_MASKED = {
    "print": "***",
    "repr": "'***'",
    "repr in a dict": "{'token': '***'}",
    "repr in a longer string": "'say \\'***\\''",
    "json.dumps": '"***"',
    "json.dumps, not ASCII": '"***"',
    "json.dumps in an object": '{"token": "***"}',
}
TRICKY_LOG = "".join(f"{how}: {text}\n" for how, text in TRICKY_PRINTED.items())


def test_a_secret_has_a_form_per_escaping() -> None:
    assert escaped_forms(TRICKY) == {
        TRICKY,  # it's "w\ö"
        r"it's \"w\\\u00f6\"",  # json.dumps
        r"it's \"w\\ö\"",  # json.dumps(ensure_ascii=False)
        r'''it\'s "w\\ö"''',  # repr: single-quoted, so "'" is escaped
    }


@pytest.mark.parametrize("how", TRICKY_PRINTED)
def test_a_secret_printed_escaped_is_masked(how: str) -> None:
    printed = TRICKY_PRINTED[how]
    assert SecretMasker([TRICKY]).mask(printed) == TRICKY_MASKED[how]


def test_a_secret_with_one_kind_of_quote_is_masked_in_either_repr() -> None:
    token = "o'k\\x"  # repr(token) is double-quoted; inside a longer repr it may not be
    masker = SecretMasker([token])
    assert masker.mask(repr({"t": token})) == """{'t': "***"}"""
    assert masker.mask(json.dumps(token)) == '"***"'
    assert masker.mask(repr(f'say "{token}"')) == """'say "***"'"""


def test_an_escaped_secret_is_masked_in_json_values_and_keys() -> None:
    masker = SecretMasker([TRICKY])
    value = {repr(TRICKY): [json.dumps(TRICKY), {"k": f"x {TRICKY!r} y"}]}
    assert masker.mask_json(value) == {"'***'": ['"***"', {"k": "x '***' y"}]}


@given(cuts=st.lists(st.integers(min_value=0), max_size=20), flush=st.booleans())
def test_escaped_secrets_are_masked_wherever_the_stream_is_cut(
    cuts: list[int], flush: bool
) -> None:
    released = feed_in_pieces(SecretMasker([TRICKY, "hunt"]), split(TRICKY_LOG, cuts), flush)
    expected = "".join(f"{how}: {text}\n" for how, text in TRICKY_MASKED.items())
    assert released == expected


def test_an_escaped_secret_split_across_pipe_reads_is_masked() -> None:
    data = TRICKY_LOG.encode()
    pieces = [data[i : i + 3] for i in range(0, len(data), 3)]  # splits "ö" too
    sent = pump(pieces, (TRICKY,))
    assert "".join(sent) == "".join(f"{how}: {text}\n" for how, text in TRICKY_MASKED.items())
    for form in escaped_forms(TRICKY):
        assert all(form not in chunk for chunk in sent)


class _Pipe:
    """Just enough StreamReader for LogStream: hands out prepared pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    @property
    def drained(self) -> bool:
        return not self._pieces

    async def read(self, n: int) -> bytes:
        return self._pieces.pop(0) if self._pieces else b""


def pump(pieces: list[bytes], secrets: tuple[str, ...] = ()) -> list[str]:
    sent: list[str] = []

    async def sink(text: str) -> None:
        sent.append(text)

    stream = LogStream(_Pipe(pieces), SecretMasker(secrets), sink)  # type: ignore[arg-type]
    asyncio.run(stream.pump())
    return sent


def test_utf8_split_across_reads_decodes_whole() -> None:
    data = "héllo wörld\n".encode()
    assert "".join(pump([data[:2], data[2:9], data[9:]])) == "héllo wörld\n"


def test_the_log_is_capped_with_one_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logstream, "MAX_LOG_BYTES", 10)
    sent = "".join(pump([b"0123456\n", b"789abc\n", b"more\n"]))
    assert sent == "0123456\n78" + logstream.TRUNCATION_NOTICE


def test_a_failing_sink_does_not_stop_the_pump() -> None:
    calls = 0

    async def sink(text: str) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("sink down")

    pipe = _Pipe([b"a\n", b"b\n", b"c\n"])
    asyncio.run(LogStream(pipe, SecretMasker(()), sink).pump())  # type: ignore[arg-type]
    assert calls == 1
    assert pipe.drained
