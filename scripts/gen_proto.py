"""Regenerate arcade_core/rpc/v1/*_pb2*.py from arcade.proto: ``python scripts/gen_proto.py``.

``--out DIR`` writes elsewhere (the staleness test uses it). Imports in the generated
gRPC module are made package-relative so the code works as ``arcade_core.rpc.v1``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parent.parent / "arcade_core" / "rpc" / "v1"


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(PROTO_DIR / "arcade.proto"),
        ]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    grpc_file = out / "arcade_pb2_grpc.py"
    text = grpc_file.read_text()
    text = re.sub(r"^import arcade_pb2 as", "from . import arcade_pb2 as", text, flags=re.M)
    grpc_file.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROTO_DIR)
    args = parser.parse_args(argv)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
