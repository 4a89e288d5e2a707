"""Editing a .tflite in tests: unpack it with TensorFlow Lite's schema (the generated
FlatBuffers classes), let ``edit`` change the object tree, pack it again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def repack(data: bytes, edit: Callable[[Any], object]) -> bytes:
    import flatbuffers

    from model_tools.fb_schema import generated_module

    gen = generated_module()
    model = gen.ModelT.InitFromObj(gen.Model.GetRootAs(data, 0))
    edit(model)
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
