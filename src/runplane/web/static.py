"""The console's static assets, shipped inside the package (nothing from a CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from runplane.domain import errors
from runplane.web.errors import console_route

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/static"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# vendored files carry their version in the name; the console's own change with releases
CACHE_VENDORED = "public, max-age=31536000, immutable"
CACHE_OWN = "no-cache"

router = APIRouter(route_class=console_route(), include_in_schema=False)


@router.get(PREFIX + "/{path:path}")
async def asset(path: str) -> Response:
    """A file under static/ (nothing outside it, no directory listings)."""
    root = STATIC_DIR.resolve()
    target = (STATIC_DIR / path).resolve()
    media_type = MEDIA_TYPES.get(target.suffix)
    if not target.is_relative_to(root) or not target.is_file() or media_type is None:
        raise errors.NotFound(f"No asset {path!r}.")
    cache = CACHE_VENDORED if target.parent.name == "vendor" else CACHE_OWN
    return FileResponse(target, media_type=media_type, headers={"Cache-Control": cache})
