from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runplane.runtime import logstream
from runplane.runtime.logstream import LogStream, SecretMasker

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
