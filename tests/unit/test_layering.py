"""The domain imports only the standard library; only the store imports SQLAlchemy."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import runplane

PACKAGE = Path(runplane.__file__).parent
IO_LIBRARIES = {"sqlalchemy", "alembic", "fastapi", "starlette", "httpx", "uvicorn", "pydantic"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_imports_no_io_library() -> None:
    for path in (PACKAGE / "domain").rglob("*.py"):
        assert not (_imports(path) & IO_LIBRARIES), path


def test_only_the_store_imports_sqlalchemy() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "store" in path.relative_to(PACKAGE).parts:
            continue
        assert "sqlalchemy" not in _imports(path), path


def test_only_the_execution_store_module_updates_executions() -> None:
    # Status writes live in store/executions.py (`_transition`); nothing else may
    # even issue an UPDATE on the executions table.
    pattern = re.compile(r"update\(\s*executions\s*\)|executions\.update\(")
    offenders = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == ["store/executions.py"]


def _full_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


SURFACE_PACKAGES = ("runplane.api.compat", "runplane.api.native", "runplane.api.oauth")
CORE_MODULES = ("app.py", "auth.py", "limits.py", "access_log.py", "surface.py", "problems.py")


def test_the_core_of_the_api_knows_no_surface() -> None:
    # Surfaces plug in through api/registry.py; the layers loop over the registry.
    for name in CORE_MODULES:
        imported = _full_imports(PACKAGE / "api" / name)
        named = sorted(i for i in imported if i.startswith(SURFACE_PACKAGES))
        assert named == [], (name, named)


def test_the_console_reaches_the_store_only_through_the_service_layer() -> None:
    for path in (PACKAGE / "web").rglob("*.py"):
        imported = _full_imports(path)
        assert not [i for i in imported if i.startswith("runplane.store")], path


def test_a_remote_runtime_loads_no_server_code() -> None:
    """`runplane runtime` needs the agent, the launcher and an HTTP client: not the
    database, the web framework or the server's settings machinery."""
    probe = (
        "import sys; import runplane.runtime.remote, runplane.runtime.http_gateway; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, check=True, text=True
        ).stdout.split()
    )
    assert not loaded & {"sqlalchemy", "psycopg", "alembic", "fastapi", "starlette", "uvicorn"}
