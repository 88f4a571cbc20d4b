"""Secret parameters encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The columns that hold secret values (`executions.secret_inputs`,
`deployments.secret_arguments`, `process_versions.secret_defaults`) are
`SealedJSON`: a non-empty dict is stored as `{"sealed": "<token>"}` and opened
on read, so nothing outside the store ever sees the stored form. The key is
installed once at start (`use_key`): from RUNPLANE_SECRET_KEY, or from a key
file created with mode 0600 in the data directory. Every replica of one
database must use the same key. Rows written before sealing existed (plain
dicts) still read.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import JSON, Dialect, TypeDecorator

KEY_FILE_NAME = "secret.key"
SEALED = "sealed"

_fernet: Fernet | None = None


class SealingError(RuntimeError):
    """A sealed value could not be opened (wrong key) or no key is installed."""


def fernet_key(value: str) -> bytes:
    """A Fernet key from a configured value: used as is when it is one, else derived."""
    raw = value.encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def load_or_create_key_file(data_dir: Path) -> bytes:
    """The key in `data_dir/secret.key`, created (mode 0600, never world-readable) if absent."""
    path = data_dir / KEY_FILE_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def use_key(key: bytes) -> None:
    """Install the sealing key of this process."""
    global _fernet
    _fernet = Fernet(key)


def _key() -> Fernet:
    if _fernet is None:
        raise SealingError("no sealing key installed (store.sealing.use_key)")
    return _fernet


def seal(value: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a secret dict ({} stays {}: nothing to hide)."""
    if not value:
        return {}
    return {SEALED: _key().encrypt(orjson.dumps(value)).decode()}


def unseal(value: dict[str, Any] | None) -> dict[str, Any]:
    """The secret dict of a stored form."""
    if not value:
        return {}
    token = value.get(SEALED)
    if token is None or len(value) != 1:
        return dict(value)  # written before sealing existed
    try:
        opened: dict[str, Any] = orjson.loads(_key().decrypt(token.encode()))
    except InvalidToken as exc:
        raise SealingError(
            "a sealed secret could not be opened: is RUNPLANE_SECRET_KEY the key it was "
            "sealed with?"
        ) from exc
    return opened


class SealedJSON(TypeDecorator[dict[str, Any]]):
    """A JSON column whose dicts are sealed at rest."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> Any:
        return None if value is None else seal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> dict[str, Any] | None:
        return None if value is None else unseal(value)


def sign(text: str) -> str:
    """A token that carries `text`, made with the sealing key (Fernet: encrypted,
    authenticated, timestamped), e.g. for a download link."""
    return _key().encrypt(text.encode()).decode()


def signed(token: str, ttl_seconds: int) -> str | None:
    """The text `sign` put in the token, if it is genuine and younger than the TTL."""
    from cryptography.fernet import InvalidToken

    try:
        return _key().decrypt(token.encode(), ttl=ttl_seconds).decode()
    except (InvalidToken, ValueError, UnicodeError):
        return None
