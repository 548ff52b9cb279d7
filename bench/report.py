"""Where every benchmark writes what it measured: one JSON file per run, stamped."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

RESULTS = Path(__file__).parent / "results"


def save(name: str, body: dict[str, Any], console: Console) -> Path:
    """``results/<name>-<UTC stamp>.json``; says where it went."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{name}-{stamp}.json"
    out.write_text(json.dumps(body, indent=2))
    console.print(f"wrote {out}")
    return out
