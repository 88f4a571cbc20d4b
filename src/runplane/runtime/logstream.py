r"""An execution's log on its way out: decoded, secrets masked, capped.

Pipes deliver bytes in whatever pieces the kernel chooses, so a secret can
arrive split across two reads ("hun" then "ter2"). Masking each piece alone
would let both halves through. ``SecretMasker`` therefore holds text back
until it is safe to release: it emits whole lines when it can, and when a
partial line has waited ``LOG_FLUSH_DELAY_SECONDS`` (a progress bar, a
prompt) it emits all of it except the longest tail that could still be the
start of a secret. That tail waits for more data or the end of the stream.

A secret also leaves a process escaped: for the value ``o'k\x``,
``print(repr(d))`` and ``print(json.dumps(value))`` both show ``o'k\\x``,
and ``json.dumps`` turns ``é`` into ``\u00e9``. So every secret is masked in
each form a JSON or Python string literal gives it (``escaped_forms``).
Limits: other encodings (URL, base64, a bytes repr, a JSON string of a JSON
string) are not recognised.

``LogStream`` pumps a subprocess pipe through a masker into an async sink,
caps the log at ``MAX_LOG_BYTES`` with one truncation notice, and keeps
reading (and dropping) past the cap so the process never blocks on a full
pipe.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

MAX_LOG_BYTES = 10 * 1024 * 1024
LOG_FLUSH_DELAY_SECONDS = 0.2
LOG_PARTIAL_LINE_MAX_CHARS = 64 * 1024
PIPE_READ_BYTES = 64 * 1024
MASK = "***"
TRUNCATION_NOTICE = f"\n[runplane] log truncated: it exceeded {MAX_LOG_BYTES} bytes\n"

logger = logging.getLogger(__name__)


def escaped_forms(value: str) -> set[str]:
    """The value as it appears printed: itself and inside JSON and Python string literals."""
    return {
        value,
        json.dumps(value)[1:-1],  # é as \u00e9, " as \", \ as \\
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],  # its own repr: double-quoted when it holds ' and no "
        # Inside a longer repr that also holds a '"', which is single-quoted and escapes
        # every "'" (repr(v + '"') is always single-quoted and leaves that '"' alone).
        repr(value + '"')[1:-2],
    }


class SecretMasker:
    """Replaces secret values, escaped forms included, with ``***`` in a text stream fed in
    arbitrary pieces."""

    def __init__(self, secret_values: Iterable[str]) -> None:
        forms = {form for value in secret_values if value for form in escaped_forms(value)}
        # Longest first, so a secret (or a form) that contains another is masked whole.
        self._values = sorted((form for form in forms if form), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, self._values))) if self._values else None
        self._multiline = any("\n" in value for value in self._values)
        self._pending = ""

    @property
    def pending(self) -> str:
        """Text received but not yet released."""
        return self._pending

    def mask(self, text: str) -> str:
        """Mask a complete string (an error message, a result value)."""
        return self._pattern.sub(MASK, text) if self._pattern else text

    def mask_json(self, value: Any) -> Any:
        """Mask every string, key or value, inside a JSON-like structure."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask(str(key)): self.mask_json(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.mask_json(item) for item in value]
        return value

    def feed(self, text: str, *, flush: bool = False) -> str:
        """Add text; return the masked text that is safe to release now.

        Without ``flush`` only whole lines are released; with it, everything but a
        tail that might be the beginning of a secret.
        """
        self._pending += text
        buffer = self._pending
        # Any secret starting before `safe` lies wholly inside the buffer.
        safe = len(buffer) - self._held_tail_length(buffer)
        line_end = buffer.rfind("\n") + 1
        if not self._multiline:
            safe = max(safe, line_end)  # a secret without "\n" cannot cross a line end
        return self._release(safe if flush else min(safe, line_end))

    def finish(self) -> str:
        """Release everything still held (the stream has ended)."""
        return self._release(len(self._pending))

    def _held_tail_length(self, buffer: str) -> int:
        longest = len(self._values[0]) - 1 if self._values else 0
        for length in range(min(longest, len(buffer)), 0, -1):
            tail = buffer[-length:]
            if any(value.startswith(tail) for value in self._values):
                return length
        return 0

    def _release(self, end: int) -> str:
        if end <= 0:
            return ""
        buffer = self._pending
        pieces: list[str] = []
        position = 0
        if self._pattern is not None:
            for match in self._pattern.finditer(buffer):
                if match.start() >= end:
                    break
                pieces += (buffer[position : match.start()], MASK)
                position = match.end()
        if position < end:
            pieces.append(buffer[position:end])
            position = end
        self._pending = buffer[position:]
        return "".join(pieces)


class LogStream:
    """Pumps a process's output pipe, masked and capped, into an async sink."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        masker: SecretMasker,
        sink: Callable[[str], Awaitable[None]],
    ) -> None:
        self._reader = reader
        self._masker = masker
        self._sink: Callable[[str], Awaitable[None]] | None = sink
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._bytes_sent = 0
        self._truncated = False

    async def pump(self) -> None:
        """Read until EOF (or cancellation), releasing text as soon as it is safe."""
        loop = asyncio.get_running_loop()
        partial_since: float | None = None  # when unreleased text started waiting
        try:
            while True:
                timeout = None
                if partial_since is not None:
                    timeout = max(0.0, partial_since + LOG_FLUSH_DELAY_SECONDS - loop.time())
                try:
                    async with asyncio.timeout(timeout):
                        data = await self._reader.read(PIPE_READ_BYTES)
                except TimeoutError:
                    await self._send(self._masker.feed("", flush=True))
                    partial_since = None  # what is still held waits for more data
                    continue
                if not data:
                    break
                if self._truncated:
                    continue
                text = self._decoder.decode(data)
                now = loop.time()
                if partial_since is None:
                    partial_since = now
                flush = (
                    now - partial_since >= LOG_FLUSH_DELAY_SECONDS
                    or len(self._masker.pending) + len(text) > LOG_PARTIAL_LINE_MAX_CHARS
                )
                await self._send(self._masker.feed(text, flush=flush))
                if flush:
                    partial_since = None  # what is still held waits for more data
                elif "\n" in text:
                    partial_since = now if self._masker.pending else None
        finally:
            # Also on cancellation: what was read is part of the log.
            tail = self._masker.feed(self._decoder.decode(b"", final=True)) + self._masker.finish()
            await self._send(tail)

    async def _send(self, text: str) -> None:
        if not text or self._truncated or self._sink is None:
            return
        encoded = text.encode("utf-8")
        if self._bytes_sent + len(encoded) > MAX_LOG_BYTES:
            room = MAX_LOG_BYTES - self._bytes_sent
            text = encoded[:room].decode("utf-8", errors="ignore") + TRUNCATION_NOTICE
            self._truncated = True
        self._bytes_sent += len(encoded)
        try:
            await self._sink(text)
        except Exception:
            # A broken sink must not stall the process on a full pipe: keep draining.
            logger.exception("log sink failed; dropping the rest of this execution's log")
            self._sink = None
