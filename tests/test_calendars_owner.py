"""Exchange schedules are owned by a Calendars object (engine.market.calendars), never module globals: the
command's settings choose the folder, activation is scoped, and calls outside a command never write."""

from __future__ import annotations

from pathlib import Path

from engine.api import Settings, execute_run, process_calendars
from engine.market import calendars
from engine.market.calendars import Calendars


def test_activation_is_scoped_and_each_object_keeps_its_own_folder(tmp_path: Path) -> None:
    outside = calendars.current()
    assert outside.folder is None  # outside any command: memory only
    first, second = Calendars(tmp_path / "a"), Calendars(tmp_path / "b")
    with first.activate():
        assert calendars.current() is first
        calendars.schedule("XHKG", "2022-01-03", "2022-01-31")
        with second.activate():
            calendars.schedule("XHKG", "2022-01-03", "2022-01-31")
        assert calendars.current() is first  # the inner one is gone again: no first (or last) caller wins
    assert calendars.current() is outside
    assert [p.name.split("-")[0] for p in sorted((tmp_path / "a").glob("*.npz"))] == ["XHKG"]
    assert [p.name.split("-")[0] for p in sorted((tmp_path / "b").glob("*.npz"))] == ["XHKG"]


def test_a_schedule_outside_a_command_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    calendars.current().schedule("XNYS", "2022-01-03", "2022-01-31")
    assert list(tmp_path.rglob("*.npz")) == []


def test_settings_share_the_process_schedules_and_keep_them_in_their_own_cache(tmp_path: Path) -> None:
    one, two = Settings(tmp_path / "c1", offline=True), Settings(tmp_path / "c2", offline=True)
    assert one.calendars.folder == tmp_path / "c1" / ".calendars"
    assert two.calendars.folder == tmp_path / "c2" / ".calendars"
    sched = one.calendars.schedule("XHKG", "2022-01-03", "2022-01-31")
    assert two.calendars.schedule("XHKG", "2022-01-03", "2022-01-31") is sched  # built once per process
    assert process_calendars().schedule("XHKG", "2022-01-03", "2022-01-31") is sched
    assert sorted(p.parent.parent.name for p in tmp_path.rglob("*.npz")) == ["c1", "c2"]


def test_an_api_call_runs_with_its_settings_calendars(sample_cache: Path) -> None:
    from engine.api import build_run_config

    settings = Settings(sample_cache, offline=True)
    process_calendars().clear()  # so the run builds (and keeps) its schedules again
    config = build_run_config(settings, "reassurance", ("hold=3",), None, {"symbols": "BABA,0700.HK"})
    execute_run(settings, config, save=False)
    assert sorted(p.name.split("-")[0] for p in (sample_cache / ".calendars").glob("*.npz")) == ["XHKG", "XNYS"]
    assert calendars.current().folder is None  # the call's activation ended with it
