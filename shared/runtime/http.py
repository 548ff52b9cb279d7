"""Every service's HTTP surface: liveness, readiness, Prometheus metrics, its own router."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def build_app(
    service: str,
    *,
    ready: Callable[[], dict[str, bool]],
    info: Callable[[], dict[str, bool]] = dict,
    routers: list[APIRouter],
) -> FastAPI:
    app = FastAPI(title=f"Conveyor {service}", version="0.1.0")

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "alive", "service": service}

    @app.get("/health/ready", tags=["health"])
    async def readiness(response: Response) -> dict[str, object]:
        checks = ready()
        if not all(checks.values()):
            response.status_code = 503
        return {"ready": all(checks.values()), "checks": checks, "info": info(), "service": service}

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


class Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: the service runner owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
