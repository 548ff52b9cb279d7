"""Where the risk worker keeps faust's data directory: in the stack's state directory, one
per broker and instance, never a folder that every stack on the machine shares."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from services.risk.app import Health, RiskSettings, create_app
from services.risk.domain import RiskState


@pytest.fixture(autouse=True)
def _no_datadir_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_RISK_DATADIR", raising=False)


def settings(bootstrap: str, instance: str = "dev") -> RiskSettings:
    return RiskSettings(kafka_bootstrap_servers=bootstrap, instance_id=instance)


def test_two_stacks_or_two_instances_do_not_share_it() -> None:
    one = settings("127.0.0.1:19092").datadir()
    other_stack = settings("127.0.0.1:29092").datadir()
    other_instance = settings("127.0.0.1:19092", instance="dev-2").datadir()
    assert len({one, other_stack, other_instance}) == 3
    assert settings("127.0.0.1:19092").datadir() == one, "stable across restarts"
    for path in (one, other_stack, other_instance):
        assert path.parent == Path(".conveyor") / "risk"
        assert not path.is_absolute(), "under the working directory's .conveyor"
        assert not str(path.resolve()).startswith(tempfile.gettempdir())


def test_the_setting_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONVEYOR_RISK_DATADIR", str(tmp_path / "risk"))
    assert RiskSettings().datadir() == tmp_path / "risk"


def test_faust_gets_it_and_can_create_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # a fresh stack: no .conveyor/risk yet
    chosen = settings("127.0.0.1:19092")
    app = create_app(chosen, RiskState(chosen.thresholds()), Health())
    assert Path(app.conf.datadir).resolve() == (tmp_path / chosen.datadir()).resolve()
    app._create_directories()  # what faust does at start: mkdir without parents
    assert (tmp_path / chosen.datadir()).is_dir()
