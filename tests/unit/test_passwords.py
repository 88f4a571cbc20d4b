"""Users' passwords: Argon2id hashes, generated passwords, the rules a new one must meet."""

from __future__ import annotations

import math
import re

from runplane.auth import passwords
from runplane.domain.auth import Scope
from runplane.domain.users import ROLE_SCOPES, password_problems, role_problem


def test_a_generated_password_is_readable_and_holds_100_random_bits() -> None:
    made = {passwords.generate_password() for _ in range(200)}
    assert len(made) == 200
    for password in made:
        assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{5}(-[0-9a-hjkmnp-tv-z]{5}){3}", password)
    alphabet = len(set(passwords.GENERATED_ALPHABET))
    bits = passwords.GENERATED_GROUPS * passwords.GENERATED_GROUP_CHARS * math.log2(alphabet)
    assert bits >= 100


def test_a_hash_is_argon2id_and_verifies_only_its_password() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "correct horse battery")
    assert not passwords.verify_password(stored, "correct horse battery ")
    assert not passwords.needs_rehash(stored)


def test_no_hash_or_a_broken_one_never_verifies() -> None:
    assert not passwords.verify_password(None, "")
    assert not passwords.verify_password(None, "anything at all")
    assert not passwords.verify_password("not a hash", "anything at all")


def test_a_lone_surrogate_hashes_instead_of_raising() -> None:
    stored = passwords.hash_password("twelve chars \udc80")
    assert passwords.verify_password(stored, "twelve chars \udc80")


def test_roles_map_to_scopes() -> None:
    scopes = {role.value: set(granted) for role, granted in ROLE_SCOPES.items()}
    assert scopes == {
        "admin": {Scope.ADMIN},
        "operator": {Scope.EXECUTIONS_START, Scope.EXECUTIONS_READ},
        "viewer": {Scope.EXECUTIONS_READ},
    }
    assert role_problem("viewer") is None
    problem = role_problem("root")
    assert problem is not None and problem["code"] == "invalid_role"


def test_every_problem_of_a_password_is_named() -> None:
    assert password_problems("a fine long password", "ada") == []
    assert [p["code"] for p in password_problems("short", "ada")] == ["password_too_short"]
    assert [p["code"] for p in password_problems("x" * 1001, "ada")] == ["password_too_long"]
    assert [p["code"] for p in password_problems("Ada.Lovelace", "ada.lovelace")] == [
        "password_is_user_name"
    ]
