"""What every service's HTTP edge refuses before a route runs, and how its OpenAPI says so.

- A request body over ``CONVEYOR_MAX_BODY_BYTES`` (default 1 MiB) is answered ``413``.
  FastAPI's own limit (``max_body_size``) refuses a too large ``Content-Length`` before
  reading, and counts the bytes of a body sent without one, so no body is read whole.
- A NUL character anywhere in the path or the query is answered ``422``, in FastAPI's
  validation-error shape: PostgreSQL text cannot hold NUL, so nothing named with one exists.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.schemas.common import NO_NUL


class RefuseNul:
    """ASGI middleware: ``422`` for a NUL character in the path or the query."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = _nul_in(scope) if scope["type"] == "http" else None
        if where is None:
            await self.app(scope, receive, send)
            return
        error = {
            "type": "string_pattern_mismatch",
            "loc": [where],
            "msg": "NUL characters are not accepted",
            "input": None,
        }
        await JSONResponse({"detail": [error]}, status_code=422)(scope, receive, send)


def _nul_in(scope: Scope) -> str | None:
    if "\x00" in scope["path"]:
        return "path"
    if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return "query"
    return None


DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
UNREADABLE = {
    "description": "The body could not be read (not UTF-8)",
    "content": {"application/json": {"schema": DETAIL}},
}
TOO_LARGE = {
    "description": "The body is larger than CONVEYOR_MAX_BODY_BYTES (a plain-text answer "
    "when Content-Length said so, JSON when the bytes read went over)",
    "content": {
        "text/plain": {"schema": {"type": "string"}},
        "application/json": {"schema": DETAIL},
    },
}


def document_edge(openapi: dict[str, Any]) -> dict[str, Any]:
    """Say in an OpenAPI document what the edge refuses: string parameters take no NUL,
    an operation with a body may answer ``413``, and ``400`` (FastAPI's answer to a body
    that is not UTF-8)."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                _refuse_nul(parameter.get("schema", {}))
            if "requestBody" in operation:
                responses = operation.setdefault("responses", {})
                responses.setdefault("400", UNREADABLE)
                responses.setdefault("413", TOO_LARGE)
    return openapi


def _refuse_nul(schema: dict[str, Any]) -> None:
    for option in schema.get("anyOf", []):
        _refuse_nul(option)
    if schema.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(schema):
        schema["pattern"] = NO_NUL
