"""Generated protocol code for ``arcade.v1`` (see ``arcade.proto``; regenerate with
``python scripts/gen_proto.py``)."""

from . import arcade_pb2 as pb
from . import arcade_pb2_grpc as pb_grpc

__all__ = ["pb", "pb_grpc"]
