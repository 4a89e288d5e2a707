"""The commands a session offers on top of raw requests: OS group, TinyOps runtime, files.

Mixed into ``DeviceSession``; every method goes through ``self.request`` (one request at a
time, with a timeout) so none of them touches the port directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from smpclient.requests import os_management as osreq

from device_drivers.link.smp_errors import SMPErrorResponse, UnexpectedResponse
from device_drivers.protocol import runtime

if TYPE_CHECKING:
    from device_drivers.link.files import UploadResult
    from device_drivers.link.session import DeviceSession
    from tinyops_base.progress import CancelToken, Progress


class DeviceCommands:
    """OS, runtime and file convenience calls; needs ``request`` and ``_write_text``."""

    def request(self, request: Any, timeout_s: float | None = None,
                retries: int = 0) -> Any:  # pragma: no cover - provided by the session
        raise NotImplementedError

    def _write_text(self, data: bytes) -> None:  # pragma: no cover - provided by the session
        raise NotImplementedError

    def echo(self, text: str, timeout_s: float | None = None) -> str:
        return str(self.request(osreq.EchoWrite(d=text), timeout_s).r)

    def app_info(self, fmt: str = "a") -> str | None:
        try:
            return str(self.request(osreq.OSApplicationInfoRead(format=fmt)).output)
        except SMPErrorResponse:
            return None

    def model_info(self, timeout_s: float | None = None) -> runtime.ModelInfoReadResponse | None:
        """The runtime's model info, or None if the device has no TinyOps runtime group."""
        # Only an answer that says "not this group" means no runtime; a lost answer is not
        # that (it would make a flash skip load-model), so it is retried, then raised.
        try:
            info = self.request(runtime.ModelInfo(), timeout_s, retries=2)
        except SMPErrorResponse as exc:
            if exc.not_supported or exc.group not in (None, runtime.GROUP_ID):
                return None
            raise
        except UnexpectedResponse:  # another group 64 (e.g. Intercreate's): not a runtime
            return None
        return cast(runtime.ModelInfoReadResponse, info)

    def load_model(self, path: str, sha256: bytes | None = None,
                   labels: list[str] | None = None,
                   timeout_s: float = 30.0) -> runtime.LoadModelWriteResponse:
        return cast(runtime.LoadModelWriteResponse, self.request(
            runtime.LoadModel(path=path, sha256=sha256, labels=labels), timeout_s))

    def stream(self, on: bool, period_ms: int | None = None) -> runtime.StreamWriteResponse:
        return cast(runtime.StreamWriteResponse,
                    self.request(runtime.Stream(on=on, period_ms=period_ms)))

    def infer(self, raw: bytes, timeout_s: float | None = None) -> tuple[bytes, int]:
        response = self.request(runtime.Infer(input=raw), timeout_s)
        return bytes(response.output), int(response.latency_us)

    def stats(self) -> runtime.StatsReadResponse:
        return cast(runtime.StatsReadResponse, self.request(runtime.Stats()))

    def reset(self) -> None:
        self.request(osreq.ResetWrite())

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        """Send plain text (a shell command, a sketch's serial input) between SMP frames."""
        self._write_text(text.encode(encoding))

    # file helpers live in device_drivers.link.files; bound here for convenience
    def upload_file(self, data: bytes, dest: str, progress: Progress | None = None,
                    cancel: CancelToken | None = None, *, max_retries: int = 5,
                    verify: bool = True, window: int | None = None) -> UploadResult:
        """Upload and verify on the device; see ``device_drivers.link.files.upload_file``."""
        from device_drivers.link.files import upload_file

        return upload_file(cast("DeviceSession", self), data, dest, progress=progress,
                           cancel=cancel, max_retries=max_retries, verify=verify,
                           window=window)

    def file_sha256(self, path: str) -> bytes:
        from device_drivers.link.files import device_sha256

        return device_sha256(cast("DeviceSession", self), path)
