"""Every service's HTTP surface: liveness, readiness, Prometheus metrics, its own router,
behind the edge checks of :mod:`shared.runtime.edge` (body size, NUL in the URL)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from shared.runtime.edge import DETAIL, RefuseNul, document_edge


def error_response(description: str) -> dict[str, Any]:
    """For ``responses=``: an ``HTTPException``'s JSON answer, ``{"detail": "..."}``,
    whatever media type the route itself answers with (e.g. an event stream)."""
    return {"description": description, "content": {"application/json": {"schema": DETAIL}}}


def answer_or_invalid(model: type[BaseModel], description: str) -> dict[str, Any]:
    """For ``responses=``: a status a route answers with ``model``, which FastAPI also uses
    for a request that fails validation (``HTTPValidationError``)."""
    refs = [f"#/components/schemas/{name}" for name in (model.__name__, "HTTPValidationError")]
    schema = {"anyOf": [{"$ref": ref} for ref in refs]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class Liveness(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]
    info: dict[str, Any]
    service: str


def build_app(
    service: str,
    *,
    ready: Callable[[], dict[str, bool]],
    info: Callable[[], dict[str, bool]] = dict,
    routers: list[APIRouter],
    max_body_bytes: int,
) -> FastAPI:
    """``max_body_bytes``: ``Settings.max_body_bytes`` (``CONVEYOR_MAX_BODY_BYTES``)."""
    app = FastAPI(title=f"Conveyor {service}", version="0.1.0", max_body_size=max_body_bytes)
    app.add_middleware(RefuseNul)

    @app.get("/health/live", tags=["health"])
    async def live() -> Liveness:
        return Liveness(status="alive", service=service)

    @app.get(
        "/health/ready",
        tags=["health"],
        responses={503: {"model": Readiness, "description": "Not ready: see checks"}},
    )
    async def readiness(response: Response) -> Readiness:
        checks = ready()
        if not all(checks.values()):
            response.status_code = 503
        return Readiness(ready=all(checks.values()), checks=checks, info=info(), service=service)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        responses={200: {"description": "Prometheus text exposition format"}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_edge(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: the service runner owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
