"""Identifiers: time-ordered UUIDs (version 7 layout), so newest-first is id order."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = [0, 0]  # [unix millis, 12-bit counter] of the id made last in this process


def new_id() -> str:
    """A UUIDv7 string, monotonic within this process (RFC 9562 §6.2 method 1).

    48 bits of Unix milliseconds, a 12-bit counter that orders ids made in the
    same millisecond, then 62 random bits.
    """
    millis = time.time_ns() // 1_000_000
    with _lock:
        if millis <= _last[0]:
            millis = _last[0]
            _last[1] += 1
            if _last[1] > 0xFFF:  # counter overflow: borrow the next millisecond
                millis += 1
                _last[1] = 0
        else:
            _last[1] = int.from_bytes(os.urandom(1), "big")  # random start, room to count
        _last[0] = millis
        counter = _last[1]
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0x2 << 62 | rand
    return str(uuid.UUID(int=value))
