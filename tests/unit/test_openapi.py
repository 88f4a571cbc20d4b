"""The OpenAPI document of the whole app is valid: every surface's routes in it."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from runplane.api.app import create_app
from runplane.settings import Settings


def test_the_openapi_document_validates(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    doc = app.api.openapi()
    validate(doc)
    assert "/api/v1/events" in doc["paths"]
    assert "text/event-stream" in str(doc["paths"]["/api/v1/events"])
    assert not [p for p in doc["paths"] if p.startswith(("/login", "/processes", "/static"))]
