"""The TinyOps runtime SMP group (user group 64).

Spec and CBOR test vectors: ``resources/protocol/runtime_group.md`` and
``resources/protocol/vectors.json``. Messages are built on ``smp``'s pydantic message
classes, so ``smpclient.SMPClient.request`` sends them like any standard group, and the
virtual board parses them with the same classes.

Group 64 is the first user-defined group id (``MGMT_GROUP_ID_PERUSER``). Intercreate's
``smp.user.intercreate`` uses the same id for its own devices; a device runs one or the
other, and ``model-info`` (command 0, a read) tells them apart.
"""

from __future__ import annotations

from enum import IntEnum, unique
from typing import Literal

from pydantic import BaseModel, ConfigDict
from smp import error as smperror
from smp import message as smpmsg

GROUP_ID = 64
RUNTIME_PROTOCOL_VERSION = 1


@unique
class Command(IntEnum):
    MODEL_INFO = 0
    LOAD_MODEL = 1
    STREAM = 2
    INFER = 3
    STATS = 4
    TENSOR = 5


@unique
class RUNTIME_ERR(IntEnum):
    """Group return codes (``ErrorV2.err.rc`` with ``group == 64``)."""

    OK = 0
    NO_MODEL = 1
    """No model is loaded (infer, model-info on a fresh board)."""
    BAD_MODEL = 2
    """The file is not a valid TFLite flatbuffer, or the interpreter cannot build it."""
    ARENA_TOO_SMALL = 3
    """The model needs more tensor arena than the board has."""
    BAD_INPUT = 4
    """Infer input has the wrong size for the loaded model's input tensor."""
    NOT_FOUND = 5
    """load-model named a file that does not exist."""
    DIGEST_MISMATCH = 6
    """load-model was given an expected sha256 that the stored file does not have."""
    TOO_LARGE = 7
    """The model does not fit the board's model storage."""


class TensorSpec(BaseModel):
    """One input or output tensor: what a host needs to quantize inputs and read outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    dtype: str
    """numpy dtype name: ``int8``, ``uint8``, ``int16``, ``int32``, ``float32``."""
    shape: list[int]
    scale: float = 0.0
    zero_point: int = 0


class _Runtime:
    _GROUP_ID = GROUP_ID


class ModelInfoReadRequest(_Runtime, smpmsg.ReadRequest):
    _COMMAND_ID = Command.MODEL_INFO


class ModelInfoReadResponse(_Runtime, smpmsg.ReadResponse):
    _COMMAND_ID = Command.MODEL_INFO

    runtime: str
    """Runtime name and version, e.g. ``tinyops-runtime 1.0.0``."""
    protocol: int = RUNTIME_PROTOCOL_VERSION
    board: str | None = None
    """Registry id of the board the runtime was built for."""
    hw_id: str | None = None
    """The device's own id (Zephyr's hwinfo device id, hex; a virtual board's serial): what
    tells one board from another of the same kind. Optional: older runtimes leave it out."""
    loaded: bool
    path: str | None = None
    sha256: bytes | None = None
    size: int | None = None
    arena_size: int
    """Bytes the runtime reserves for the tensor arena."""
    arena_used: int | None = None
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None
    labels: list[str] | None = None
    default_path: str
    """Where the runtime expects models to be uploaded by default."""
    ops: list[str] | None = None
    """The operators the firmware registers (builtin names, e.g. ``CONV_2D``); a model
    using any other one cannot load (``BAD_MODEL``)."""


class LoadModelWriteRequest(_Runtime, smpmsg.WriteRequest):
    _COMMAND_ID = Command.LOAD_MODEL

    path: str
    sha256: bytes | None = None
    """If given, the runtime refuses a file whose digest differs (``DIGEST_MISMATCH``)."""
    labels: list[str] | None = None


class LoadModelWriteResponse(_Runtime, smpmsg.WriteResponse):
    _COMMAND_ID = Command.LOAD_MODEL

    sha256: bytes
    size: int
    arena_used: int


class StreamWriteRequest(_Runtime, smpmsg.WriteRequest):
    _COMMAND_ID = Command.STREAM

    on: bool
    period_ms: int | None = None
    """Inference period (one sensor window, one inference)."""
    fields: list[Literal["scores", "latency", "resources"]] | None = None
    mode: Literal["raw", "summary"] | None = None
    """``raw``: one telemetry line per inference; ``summary``: one line per
    ``summary_period_ms`` with class counts, a confidence histogram and latency p50/p95."""
    summary_period_ms: int | None = None


class StreamWriteResponse(_Runtime, smpmsg.WriteResponse):
    _COMMAND_ID = Command.STREAM

    on: bool
    period_ms: int
    mode: Literal["raw", "summary"] | None = None
    """Echoed only when the request carried ``mode`` (a runtime without summary mode never
    sends it, so its absence tells the host the device streams raw)."""
    summary_period_ms: int | None = None


class InferWriteRequest(_Runtime, smpmsg.WriteRequest):
    _COMMAND_ID = Command.INFER

    input: bytes
    """The raw input tensor, in the model's input dtype (int8 for quantized models)."""
    preserve: bool | None = None
    """Keep every operator's output of this inference for ``tensor`` reads (divergence
    reports); the board then pauses its stream's inferences for a few seconds."""


class InferWriteResponse(_Runtime, smpmsg.WriteResponse):
    _COMMAND_ID = Command.INFER

    output: bytes
    """The raw output tensor, in the model's output dtype."""
    latency_us: int
    ops: int | None = None
    """Operators in the model; sent when the request had ``preserve``."""


class StatsReadRequest(_Runtime, smpmsg.ReadRequest):
    _COMMAND_ID = Command.STATS


class StatsReadResponse(_Runtime, smpmsg.ReadResponse):
    _COMMAND_ID = Command.STATS

    uptime_ms: int
    heap_free: int
    heap_total: int
    arena_size: int
    arena_used: int
    cpu_load: float
    """0..1 over the last stats period."""
    temp_c: float | None = None
    """Absent where the board has no temperature sensor (never invented)."""
    vcc_mv: int | None = None
    """Absent where the board cannot measure its supply."""
    inferences: int
    last_latency_us: int
    rx_dropped: int | None = None
    """UART bytes the board's receive buffer dropped since boot (firmware runtime)."""
    frames_dropped: int | None = None
    """Console frames/lines the SMP framing dropped since boot: too long, bad base64,
    length or CRC, cut short (firmware runtime; text lines are not counted)."""


class TensorReadRequest(_Runtime, smpmsg.ReadRequest):
    """One chunk of operator ``op``'s first output after an ``infer`` with ``preserve``."""

    _COMMAND_ID = Command.TENSOR

    op: int
    off: int = 0


class TensorReadResponse(_Runtime, smpmsg.ReadResponse):
    _COMMAND_ID = Command.TENSOR

    op: int
    ops: int
    """Operators in the model."""
    off: int
    len: int
    """Bytes of ``data``."""
    total: int
    """Bytes of the whole tensor."""
    data: bytes
    spec: TensorSpec | None = None
    """The tensor's spec (its name is the operator's output tensor), with the first chunk."""


class RuntimeErrorV1(_Runtime, smperror.ErrorV1):
    pass


class RuntimeErrorV2(_Runtime, smperror.ErrorV2[RUNTIME_ERR]):
    pass


class _Group:
    _ErrorV1 = RuntimeErrorV1
    _ErrorV2 = RuntimeErrorV2


# The request types smpclient sends: each knows its response and error types.
class ModelInfo(ModelInfoReadRequest, _Group):
    _Response = ModelInfoReadResponse


class LoadModel(LoadModelWriteRequest, _Group):
    _Response = LoadModelWriteResponse


class Stream(StreamWriteRequest, _Group):
    _Response = StreamWriteResponse


class Infer(InferWriteRequest, _Group):
    _Response = InferWriteResponse


class Stats(StatsReadRequest, _Group):
    _Response = StatsReadResponse


class Tensor(TensorReadRequest, _Group):
    _Response = TensorReadResponse


REQUESTS: dict[tuple[int, int], type[smpmsg.Request]] = {
    (int(r._OP), int(r._COMMAND_ID)): r
    for r in (
        ModelInfoReadRequest,
        LoadModelWriteRequest,
        StreamWriteRequest,
        InferWriteRequest,
        StatsReadRequest,
        TensorReadRequest,
    )
}
"""(op, command id) → request class, for servers that parse group 64."""
