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

from shared.runtime.edge import EdgeSettings, RefuseNul, document_edge


class ErrorDetail(BaseModel):
    """The body of an ``HTTPException``: what went wrong, in words."""

    detail: str


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
    max_body_bytes: int | None = None,
) -> FastAPI:
    """``max_body_bytes`` defaults to ``CONVEYOR_MAX_BODY_BYTES`` (1 MiB)."""
    limit = max_body_bytes if max_body_bytes is not None else EdgeSettings().max_body_bytes
    app = FastAPI(title=f"Conveyor {service}", version="0.1.0", max_body_size=limit)
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
