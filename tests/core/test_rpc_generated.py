"""The generated arcade.v1 code in the repo must match arcade.proto (regenerate with
``python scripts/gen_proto.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "arcade_core" / "rpc" / "v1"


def test_generated_protocol_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path)],
        check=True,
    )
    names = ["arcade_pb2.py", "arcade_pb2.pyi", "arcade_pb2_grpc.py"]
    stale = [n for n in names if (tmp_path / n).read_text() != (GENERATED / n).read_text()]
    assert not stale, f"stale generated code: {stale}; run: python scripts/gen_proto.py"


def test_generated_protocol_round_trips_a_desired_state() -> None:
    from arcade_core.rpc.v1 import pb

    wheel = pb.WheelRef(filename="a.whl", sha256="ab" * 32, size=3)
    plugin = pb.DesiredPlugin(name="arcade-cpu", version="1.0.0", wheels=[wheel])
    state = pb.DesiredState(revision=7, plugins=[plugin])
    parsed = pb.DesiredState.FromString(state.SerializeToString())
    assert parsed.revision == 7
    assert parsed.plugins[0].wheels[0].sha256 == "ab" * 32
