"""Declared dependencies: the three files, includes, index options, what is refused
(each problem named by file and place), and the key that identifies an environment."""

from __future__ import annotations

import pytest

from runplane.dependencies import Dependencies, DependencyError, read_dependencies
from runplane.manifest import parse_manifest


def problems(files: dict[str, str], named: str | None = None) -> list[tuple[str, str, str]]:
    with pytest.raises(DependencyError) as refused:
        read_dependencies(files.get, named)
    return [(p["file"], p["name"], p["code"]) for p in refused.value.problems]


def test_requirements_with_comments_includes_hashes_and_index_options() -> None:
    deps = read_dependencies(
        {
            "requirements.txt": (
                "# pinned\n"
                "requests==2.31.0  # the client\n"
                "\n"
                "-r deps/more.txt\n"
                "--index-url https://mirror.example/simple\n"
                "attrs \\\n"
                "    >=23 --hash=sha256:abcd\n"
            ),
            "deps/more.txt": "-r ../extra.txt\nidna>=3\n",
            "extra.txt": "six\n",
        }.get
    )
    assert deps == Dependencies(
        source="requirements.txt",
        requirements=(
            "requests==2.31.0",
            "six",
            "idna>=3",
            "--index-url https://mirror.example/simple",
            "attrs  >=23 --hash=sha256:abcd",
        ),
    )


def test_what_a_requirements_file_may_not_say_is_named_line_by_line() -> None:
    found = problems(
        {
            "requirements.txt": (
                "-e .\n./pkg\nfile:///opt/x\nnot a requirement!\n-r ../outside.txt\n"
                "-r missing.txt\n-c constraints.txt\n--bogus\n--index-url\n-r requirements.txt\n"
            )
        }
    )
    assert found == [
        ("requirements.txt", "line 1", "unsupported_option"),
        ("requirements.txt", "line 2", "local_path"),
        ("requirements.txt", "line 3", "local_path"),
        ("requirements.txt", "line 4", "invalid_requirement"),
        ("requirements.txt", "line 5", "bad_include"),
        ("requirements.txt", "line 6", "missing_file"),
        ("requirements.txt", "line 7", "unsupported_option"),
        ("requirements.txt", "line 8", "unsupported_option"),
        ("requirements.txt", "line 9", "missing_value"),
        ("requirements.txt", "line 10", "bad_include"),
    ]


def test_pyproject_dependencies_and_a_pyproject_that_declares_none() -> None:
    files = {"pyproject.toml": '[project]\nname = "x"\ndependencies = ["httpx>=0.27"]\n'}
    assert read_dependencies(files.get) == Dependencies("pyproject.toml", ("httpx>=0.27",))
    assert read_dependencies({"pyproject.toml": '[project]\nname = "x"\n'}.get) is None
    assert problems({"pyproject.toml": "[project]\ndependencies = ['ok', '!!']\n"}) == [
        ("pyproject.toml", "project.dependencies[1]", "invalid_requirement")
    ]
    assert problems({"pyproject.toml": "[project"}) == [("pyproject.toml", "", "toml_syntax")]


def test_a_robocorp_conda_yaml_gives_its_pip_list_and_python() -> None:
    text = """
channels:
  - conda-forge
dependencies:
  - python=3.10.12
  - pip=23.2.1
  - robocorp-truststore=0.8.0
  - nodejs
  - pip:
    - robocorp==1.4.3
    - rpaframework==28.0.0
"""
    deps = read_dependencies({"conda.yaml": text}.get)
    assert deps == Dependencies(
        source="conda.yaml",
        requirements=("robocorp==1.4.3", "rpaframework==28.0.0"),
        python="3.10.12",
        ignored=("robocorp-truststore=0.8.0", "nodejs"),
    )
    ranged = read_dependencies({"conda.yaml": "dependencies:\n  - python>=3.10\n"}.get)
    assert ranged is not None and ranged.python == ">=3.10" and ranged.requirements == ()
    assert problems({"conda.yaml": "dependencies:\n  - pip:\n    - ok\n    - 'bad one!'\n"}) == [
        ("conda.yaml", "dependencies.pip[1]", "invalid_requirement")
    ]
    assert problems({"conda.yaml": "channels: [x]\n"}) == [
        ("conda.yaml", "dependencies", "missing_key")
    ]
    assert problems({"conda.yaml": "dependencies: [\n"}) == [("conda.yaml", "", "yaml_syntax")]


def test_the_first_file_that_declares_something_is_used_unless_one_is_named() -> None:
    files = {
        "requirements.txt": "a==1\n",
        "pyproject.toml": "[project]\ndependencies = ['b==2']\n",
        "conda.yaml": "dependencies:\n  - pip:\n    - c==3\n",
        "other.txt": "d==4\n",
    }
    assert read_dependencies(files.get).requirements == ("a==1",)  # type: ignore[union-attr]
    named = read_dependencies(files.get, "conda.yaml")
    assert named is not None and named.requirements == ("c==3",)
    assert read_dependencies(files.get, "other.txt").source == "other.txt"  # type: ignore[union-attr]
    assert problems(files, "nope.txt") == [("nope.txt", "", "missing_file")]
    assert read_dependencies({}.get) is None


def test_the_key_is_the_set_and_the_python_it_is_built_with() -> None:
    one = Dependencies("requirements.txt", ("a==1",))
    assert one.key("3.11") == Dependencies("pyproject.toml", ("a==1",)).key("3.11")
    assert one.key("3.11") != one.key("3.12")
    assert one.key("3.11") != Dependencies("x", ("a==2",)).key("3.11")
    assert Dependencies("x", ("a==1",), python="3.12").key("3.11") == one.key("3.12")
    assert Dependencies.from_dict(one.to_dict()) == one


def test_the_manifest_names_the_file_and_reports_its_problems_with_its_own() -> None:
    manifest = '[process]\nname = "p"\nentrypoint = "m:f"\ndependencies = "reqs/base.txt"\n'
    spec = parse_manifest(manifest, {"reqs/base.txt": "httpx\n"}.get)
    assert spec.dependencies == Dependencies("reqs/base.txt", ("httpx",))
    assert spec.to_dict()["dependencies"]["requirements"] == ["httpx"]
    with pytest.raises(Exception) as refused:
        parse_manifest(
            '[process]\nname = "p"\nentrypoint = "m:f"\ntimeout = "x"\n',
            {"requirements.txt": "-e .\n"}.get,
        )
    found = [(p["file"], p["name"]) for p in refused.value.problems]  # type: ignore[attr-defined]
    assert found == [("runplane.toml", "process.timeout"), ("requirements.txt", "line 1")]
    assert parse_manifest(manifest).dependencies is None  # no reader: no files read
