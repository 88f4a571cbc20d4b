"""Secret values: generated with 256 bits of randomness, stored as SHA-256, compared
in constant time.

A slow password hash buys nothing for values this random (no dictionary to try),
and a fast one keeps every request's credential check cheap. Each value carries
a prefix naming its kind, so a leaked one is recognisable (secret scanners,
logs) and a misplaced one gets a clear error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from runplane.domain.auth import CredentialKind

SECRET_BYTES = 32
PREFIXES = {
    CredentialKind.API_TOKEN: "rpt_",
    CredentialKind.PROCESS_SECRET: "rps_",
    CredentialKind.ACCESS_TOKEN: "rpa_",
    CredentialKind.SESSION: "rpw_",  # a web console session (`rps_` is a process secret)
    CredentialKind.RUN_TOKEN: "rpr_",  # a robot's run: its work items (Robocorp's libraries)
}
MIN_ADMIN_TOKEN_CHARS = 32
CLIENT_ID_PREFIX = "rpc_"  # an OAuth2 client id: an identifier, not a secret
CLIENT_ID_BYTES = 12  # 16 URL-safe characters
CLIENT_SECRET_PREFIX = "rpcs_"  # noqa: S105 - a prefix, not a secret
UPLOAD_TOKEN_PREFIX = "rpu_"  # noqa: S105 - a one-time work item file upload token


def new_secret(kind: CredentialKind) -> str:
    """A fresh secret of this kind: prefix + 43 URL-safe characters (256 bits)."""
    return PREFIXES[kind] + secrets.token_urlsafe(SECRET_BYTES)


def new_client_id() -> str:
    """A fresh OAuth2 client id: `rpc_` + 16 URL-safe characters."""
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(CLIENT_ID_BYTES)


def new_client_secret() -> str:
    """A fresh OAuth2 client secret: `rpcs_` + 43 URL-safe characters (256 bits)."""
    return CLIENT_SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def new_upload_token() -> str:
    """A fresh one-time upload token: `rpu_` + 43 URL-safe characters (256 bits)."""
    return UPLOAD_TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def digest(secret: str) -> str:
    """The stored form of a secret: hex SHA-256."""
    # surrogatepass: a JSON body can carry lone surrogates; they must hash, not raise
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a.encode(), b.encode())
