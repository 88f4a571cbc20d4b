"""Users' passwords: Argon2id hashes (argon2-cffi), and generated passwords.

People choose passwords, so unlike the random secrets of auth/secrets.py they
are hashed slowly: Argon2id with argon2-cffi's defaults (RFC 9106's low-memory
profile: 64 MiB, 3 passes, 4 lanes). Hashing or verifying costs ~0.1 s of CPU,
so callers run these functions off the event loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Crockford's base32 (no i, l, o, u: nothing to misread): 5 bits a character
GENERATED_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
GENERATED_GROUPS = 4
GENERATED_GROUP_CHARS = 5  # 4 groups of 5 characters of 5 bits: 100 bits

_hasher = PasswordHasher()
_dummy_hash: list[str] = []  # made on first use; verified when there is no user


def _bytes(password: str) -> bytes:
    # surrogatepass: a JSON body can carry lone surrogates; they must hash, not raise
    return password.encode("utf-8", "surrogatepass")


def hash_password(password: str) -> str:
    """The stored form of a password: an Argon2id hash string with its parameters."""
    return _hasher.hash(_bytes(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches `password_hash`.

    With no hash (no such user) the password is checked against a dummy hash,
    so an unknown name costs the same time as a wrong password, then refused.
    """
    if not _dummy_hash:
        _dummy_hash.append(_hasher.hash(secrets.token_bytes(16)))
    try:
        matched = _hasher.verify(password_hash or _dummy_hash[0], _bytes(password))
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A fresh readable password: 4 groups of 5 characters, 100 random bits
    (e.g. `7kq2m-x9d4t-...`)."""
    return "-".join(
        "".join(secrets.choice(GENERATED_ALPHABET) for _ in range(GENERATED_GROUP_CHARS))
        for _ in range(GENERATED_GROUPS)
    )
