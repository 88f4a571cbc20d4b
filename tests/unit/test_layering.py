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


def _updates_of_executions(path: Path) -> dict[str, set[str]]:
    """Function → the columns set by the UPDATEs of `executions` it issues (by every
    `.values(...)` in it: more than enough); "**" stands for a spread. An UPDATE built
    once at module level (`_UPDATE = update(executions).where(...)`, or one derived from
    it) sets the columns its parameters name: a function that uses one counts "**"."""
    tree = ast.parse(path.read_text())
    prebuilt: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and any(
            (isinstance(n, ast.Call) and _updates_executions(n))
            or (isinstance(n, ast.Name) and n.id in prebuilt)
            for n in ast.walk(node.value or ast.Constant(None))
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            prebuilt.update(t.id for t in targets if isinstance(t, ast.Name))
    updaters: set[str] = set()
    columns: dict[str, set[str]] = {}

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call):
                if _updates_executions(child):
                    updaters.add(function)
                if isinstance(child.func, ast.Attribute) and child.func.attr == "values":
                    named = {k.arg or "**" for k in child.keywords}
                    columns.setdefault(function, set()).update(named, ["**"] * len(child.args))
            if function != "<module>" and isinstance(child, ast.Name) and child.id in prebuilt:
                updaters.add(function)
                columns.setdefault(function, set()).add("**")
            visit(child, function)

    visit(tree, "<module>")
    return {
        function: columns.get(function, set())
        for function in updaters
        if function != "<module>" or function in columns
    }


def _is_executions(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "executions"


def _updates_executions(call: ast.Call) -> bool:
    """`update(executions)` or `executions.update()`."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "update" and bool(call.args) and _is_executions(call.args[0])
    return isinstance(func, ast.Attribute) and func.attr == "update" and _is_executions(func.value)


def _execution_updates() -> dict[str, set[str]]:
    return {
        f"{path.relative_to(PACKAGE).as_posix()}:{function}": columns
        for path in PACKAGE.rglob("*.py")
        for function, columns in _updates_of_executions(path).items()
    }


def test_only_the_transition_writes_an_execution_status() -> None:
    # One function owns the transitions: after the trigger's insert, nothing else
    # writes a status (and so records its event). A spread (`**values`) counts.
    writers = sorted(f for f, columns in _execution_updates().items() if columns & {"status", "**"})
    assert writers == ["store/transitions.py:transition"]


def test_every_update_of_executions_is_known() -> None:
    # The other UPDATEs touch no status: a heartbeat's expiry, a cancel request's flag.
    assert _execution_updates() == {
        "store/executions.py:request_cancel": {"cancel_requested", "updated_at"},
        "store/leases.py:renew_lease": {"lease_expires_at"},
        "store/transitions.py:transition": {"**"},
    }
    raw = re.compile(r"UPDATE\s+executions\b")
    assert [p for p in PACKAGE.rglob("*.py") if raw.search(p.read_text())] == []


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
