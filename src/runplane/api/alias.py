"""Serve a vendor surface under a second path prefix as well (the outermost layer)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class PathAlias:
    """Requests under `alias` go on as if they were under `target`.

    Everything below (authentication, errors in the surface's shape, routing)
    sees the target path, so an alias behaves exactly like the surface it names.
    """

    def __init__(self, app: ASGIApp, alias: str, target: str) -> None:
        self.app = app
        self.alias = alias.rstrip("/") + "/"
        self.target = target.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.alias):
            scope = {**scope, "path": self.target + scope["path"][len(self.alias) :]}
            raw = scope.get("raw_path")
            if raw and raw.startswith(self.alias.encode()):
                scope["raw_path"] = self.target.encode() + raw[len(self.alias) :]
        await self.app(scope, receive, send)
