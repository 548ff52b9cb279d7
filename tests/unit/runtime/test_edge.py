"""The HTTP edge every service shares: body size limit, NUL in the URL, honest OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from shared.runtime.http import build_app
from shared.runtime.settings import Settings

LIMIT = 1000


class Body(BaseModel):
    text: str


def client(max_body_bytes: int = LIMIT) -> httpx.AsyncClient:
    router = APIRouter()

    @router.post("/things/{thing_id}")
    async def post(thing_id: str, body: Body) -> dict[str, int]:
        return {"length": len(body.text)}

    @router.get("/things")
    async def find(name: str) -> dict[str, str]:
        return {"name": name}

    app = build_app(
        "test", ready=lambda: {"db": True}, routers=[router], max_body_bytes=max_body_bytes
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_body_over_the_limit_is_refused_before_the_route_runs() -> None:
    async with client() as http:
        fits = await http.post("/things/a", json={"text": "x" * (LIMIT - 20)})
        assert fits.status_code == 200
        declared = await http.post("/things/a", json={"text": "x" * LIMIT})
        assert declared.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: bytes are counted
            yield b'{"text": "'
            for _ in range(LIMIT):
                yield b"x"
            yield b'"}'

        streamed = await http.post(
            "/things/a", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413


def test_the_limit_is_a_setting_with_a_one_mib_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_MAX_BODY_BYTES", raising=False)
    assert Settings(service="t").max_body_bytes == 1024 * 1024
    monkeypatch.setenv("CONVEYOR_MAX_BODY_BYTES", "2048")
    assert Settings(service="t").max_body_bytes == 2048


@pytest.mark.parametrize("url", ["/things/a%00b", "/things?name=a%00b", "/health/live?x=%00"])
async def test_nul_in_the_url_is_a_validation_error(url: str) -> None:
    async with client() as http:
        response = await (http.post(url, json={"text": "x"}) if "/a" in url else http.get(url))
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "string_pattern_mismatch"


async def test_the_openapi_document_says_what_the_edge_answers() -> None:
    async with client() as http:
        document = (await http.get("/openapi.json")).json()
        metrics = await http.get("/metrics")
    [parameter] = document["paths"]["/things/{thing_id}"]["post"]["parameters"]
    assert parameter["schema"]["pattern"] == "^[^\\x00]*$"
    assert "413" in document["paths"]["/things/{thing_id}"]["post"]["responses"]
    assert "413" not in document["paths"]["/things"]["get"]["responses"]
    documented = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(documented) == ["text/plain"]
    assert metrics.headers["content-type"].startswith("text/plain")
    ready = document["paths"]["/health/ready"]["get"]["responses"]
    assert ready["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }
