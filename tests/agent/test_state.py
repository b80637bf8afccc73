"""StateStore: atomic persistence of what the agent applied."""

from __future__ import annotations

from pathlib import Path

from arcade_agent.state import AppliedPlugin, AppliedState, StateStore, WheelFile


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    wheels = (WheelFile("a-1.0-py3-none-any.whl", "a" * 64, 10),
              WheelFile("dep-2.0-py3-none-any.whl", "b" * 64, 20))
    state = AppliedState(7, {"a": AppliedPlugin("a", "1.0", "a" * 64, "process",
                                                {"k": [1, 2]}, 2.5, wheels)})
    store.save(state)
    loaded = store.load()
    assert loaded == state
    assert loaded.pinned_wheels() == {"a" * 64, "b" * 64}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_missing_state_is_empty(tmp_path: Path) -> None:
    assert StateStore(tmp_path / "state.json").load() == AppliedState()


def test_corrupt_state_is_moved_aside_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"revision": 3, "plugins": [{"nam')
    assert StateStore(path).load() == AppliedState()
    assert (tmp_path / "state.json.corrupt").exists()
    assert not path.exists()
