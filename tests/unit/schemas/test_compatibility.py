"""BACKWARD_TRANSITIVE: today's readers accept data written under every committed snapshot.

Instances are generated from each snapshot with hypothesis-jsonschema and read through
``registry.parse`` (upcasters included), as a consumer replaying old events would.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from shared.schemas.events.order import CancelOrder
from shared.schemas.export import (
    SNAPSHOT_DIR,
    IncompatibleSchema,
    incompatibility,
    load,
    snapshot_files,
    write_snapshots,
)
from shared.schemas.registry import Message, all_models

SNAPSHOTS = sorted(SNAPSHOT_DIR.glob("*/[0-9][0-9][0-9][0-9].json"))
CANCEL = "order.cancel.v1"


class CancelWithTicket(CancelOrder):
    """Throwaway, never registered: a new required field breaks old data."""

    ticket_id: str


class CancelWithOptionalTicket(CancelOrder):
    """Throwaway, never registered: a new optional field is compatible."""

    ticket_id: str | None = None


class CancelWithLongerReason(CancelOrder):
    """Throwaway, never registered: a tighter constraint breaks old data."""

    reason: str = Field(default="", min_length=5)


def reader(model: type[Message]) -> Any:
    return lambda _type, data: model.model_validate(data)


def test_every_registered_type_has_snapshots() -> None:
    assert {path.parent.name for path in SNAPSHOTS} == set(all_models())


@pytest.mark.parametrize("path", SNAPSHOTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_current_reader_accepts_instances_of_every_snapshot(path: Path) -> None:
    assert incompatibility(load(path), path.parent.name) is None


@pytest.mark.parametrize("model", [CancelWithTicket, CancelWithLongerReason])
def test_checker_catches_a_breaking_change(model: type[Message]) -> None:
    snapshot = load(snapshot_files(CANCEL)[0])
    problem = incompatibility(snapshot, CANCEL, reader(model))
    assert problem is not None
    assert ("ticket_id" if model is CancelWithTicket else "reason") in problem


def test_checker_accepts_a_compatible_change() -> None:
    snapshot = load(snapshot_files(CANCEL)[0])
    assert incompatibility(snapshot, CANCEL, reader(CancelWithOptionalTicket)) is None


def test_throwaway_models_were_not_registered() -> None:
    assert CANCEL in all_models()
    assert all_models()[CANCEL] is CancelOrder


@pytest.fixture
def scratch_snapshots(tmp_path: Path) -> Path:
    shutil.copytree(SNAPSHOT_DIR / CANCEL, tmp_path / CANCEL)
    return tmp_path


def test_write_refuses_a_breaking_change_and_writes_nothing(scratch_snapshots: Path) -> None:
    before = sorted(p.name for p in (scratch_snapshots / CANCEL).iterdir())
    with pytest.raises(IncompatibleSchema) as caught:
        write_snapshots({CANCEL: CancelWithTicket}, scratch_snapshots, reader(CancelWithTicket))
    assert "ticket_id" in str(caught.value)
    assert sorted(p.name for p in (scratch_snapshots / CANCEL).iterdir()) == before


def test_write_appends_a_compatible_change(scratch_snapshots: Path) -> None:
    first = snapshot_files(CANCEL, scratch_snapshots)
    old_text = [path.read_text() for path in first]
    model = CancelWithOptionalTicket
    written = write_snapshots({CANCEL: model}, scratch_snapshots, reader(model))
    assert [path.name for path in written] == [f"{len(first) + 1:04d}.json"]
    assert load(written[0]) == model.model_json_schema()
    assert [path.read_text() for path in first] == old_text
    assert write_snapshots({CANCEL: model}, scratch_snapshots, reader(model)) == []


def test_write_refuses_when_a_snapshotted_type_is_no_longer_registered(
    scratch_snapshots: Path,
) -> None:
    with pytest.raises(IncompatibleSchema, match="no model is registered"):
        write_snapshots({}, scratch_snapshots)
