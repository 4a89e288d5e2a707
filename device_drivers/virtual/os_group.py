"""OS management (group 0) and statistics (group 2) of the virtual board."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from smp import error as smperror
from smp import os_management as osm
from smp import statistics_management as stm

from device_drivers.virtual.smp_server import Dispatcher, Fail

BUF_SIZE = 4096
"""The ``lenient`` profile's buffer size (profiles.py holds every profile's)."""
BUF_COUNT = 4

_APP_INFO_ORDER = "snrvbmpio"


class OsGroup:
    """OS management: echo, reset, task/memory stats, params, app and bootloader info."""

    def __init__(self, board_id: str, mcu: str, version: Callable[[], str],
                 uptime_ms: Callable[[], int], reset: Callable[[], None],
                 stats: Callable[[], dict[str, dict[str, int]]], *,
                 buf_size: int = BUF_SIZE, buf_count: int = BUF_COUNT) -> None:
        self.buf_size = buf_size
        self.buf_count = buf_count
        self.board_id = board_id
        self.mcu = mcu
        self._version = version
        self._uptime_ms = uptime_ms
        self._reset = reset
        self._stats = stats
        self._clock_offset = 0.0
        self._clock_set = False
        self._built = dt.datetime.now().strftime("%a %b %d %H:%M:%S %Y")

    def register(self, d: Dispatcher) -> None:
        d.error_classes[0] = osm.OSManagementErrorV2
        d.error_classes[2] = stm.StatisticsManagementErrorV2
        d.names.update({0: "os mgmt", 2: "stat mgmt"})
        d.add(osm.EchoWriteRequest, lambda r: osm.EchoWriteResponse(r=r.d))
        d.add(osm.ResetWriteRequest, self.reset)
        d.add(osm.TaskStatisticsReadRequest, self.task_stats)
        d.add(osm.MemoryPoolStatisticsReadRequest, self.memory_pools)
        d.add(osm.DateTimeReadRequest, self.datetime_read)
        d.add(osm.DateTimeWriteRequest, self.datetime_write)
        d.add(osm.MCUMgrParametersReadRequest,
              lambda _r: osm.MCUMgrParametersReadResponse(buf_size=self.buf_size,
                                                          buf_count=self.buf_count))
        d.add(osm.OSApplicationInfoReadRequest, self.app_info)
        d.add(osm.BootloaderInformationReadRequest, self.bootloader_info)
        d.add(stm.ListOfGroupsRequest,
              lambda _r: stm.ListOfGroupsResponse(stat_list=tuple(self._stats())))
        d.add(stm.GroupDataRequest, self.group_data)

    def reset(self, _req: osm.ResetWriteRequest) -> tuple[osm.ResetWriteResponse, Any]:
        return osm.ResetWriteResponse(), self._reset  # reply first, then reboot

    def task_stats(self, _req: Any) -> osm.TaskStatisticsReadResponse:
        ticks = self._uptime_ms()
        tasks = {
            "idle": (15, 0, 64, 80, 0.90), "main": (0, 1, 380, 1024, 0.01),
            "smp_work": (-2, 2, 610, 1536, 0.02), "inference": (5, 3, 900, 2048, 0.05),
            "telemetry": (7, 4, 300, 768, 0.02),
        }
        return osm.TaskStatisticsReadResponse(tasks={
            name: osm.TaskStatistics(prio=prio, tid=tid, state=1 if name == "idle" else 0,
                                     stkuse=use // 4, stksiz=size // 4,
                                     cswcnt=ticks // (7 + tid), runtime=int(ticks * share),
                                     last_checkin=0, next_checkin=0)
            for name, (prio, tid, use, size, share) in tasks.items()})

    def memory_pools(self, _req: Any) -> osm.MemoryPoolStatisticsReadResponse:
        count = self.buf_count
        busy = min(count, 1 + (self._uptime_ms() // 997) % 2)
        return osm.MemoryPoolStatisticsReadResponse(
            smp_buf={"blksize": self.buf_size, "nblks": count, "nfree": count - busy,
                     "min": max(0, count - 2)})

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(time.time() + self._clock_offset)

    def datetime_read(self, _req: Any) -> osm.DateTimeReadResponse:
        if not self._clock_set:
            raise Fail(osm.OS_MGMT_RET_RC.RTC_NOT_SET, 0)
        return osm.DateTimeReadResponse(datetime=self._now().isoformat(timespec="seconds"))

    def datetime_write(self, req: osm.DateTimeWriteRequest) -> osm.DateTimeWriteResponse:
        try:
            when = dt.datetime.fromisoformat(req.datetime.replace("Z", "+00:00"))
        except ValueError:
            raise Fail(smperror.MGMT_ERR.EINVAL, reason="datetime is not ISO 8601") from None
        if when.tzinfo is not None:
            when = when.astimezone().replace(tzinfo=None)
        self._clock_offset = when.timestamp() - time.time()
        self._clock_set = True
        return osm.DateTimeWriteResponse()

    def app_info(self, req: osm.OSApplicationInfoReadRequest) -> osm.OSApplicationInfoReadResponse:
        fmt = req.format or "s"
        if any(c not in _APP_INFO_ORDER + "a" for c in fmt):
            raise Fail(osm.OS_MGMT_RET_RC.INVALID_FORMAT, 0)
        if "a" in fmt:
            fmt = _APP_INFO_ORDER
        values = {"s": "Zephyr", "n": self.board_id, "r": self._version(),
                  "v": "tinyops-runtime-1.0.0", "b": self._built, "m": "arm",
                  "p": "cortex-m4", "i": self.mcu, "o": "Zephyr"}
        return osm.OSApplicationInfoReadResponse(
            output=" ".join(values[c] for c in _APP_INFO_ORDER if c in fmt))

    def bootloader_info(self, req: osm.BootloaderInformationReadRequest) -> Any:
        if req.query is None:
            return osm.BootloaderInformationReadResponse(bootloader="MCUboot")
        if req.query == "mode":
            return osm.BootloaderInformationReadResponse(
                bootloader="MCUboot", response={"mode": osm.MCUbootMode.SWAP_USING_SCRATCH})
        raise Fail(osm.OS_MGMT_RET_RC.QUERY_YIELDS_NO_ANSWER, 0)

    def group_data(self, req: stm.GroupDataRequest) -> stm.GroupDataResponse:
        groups = self._stats()
        if req.name not in groups:
            raise Fail(stm.STAT_MGMT_ERR.ERR_INVALID_STAT_NAME, 2)  # what Zephyr 4.4 answers
        return stm.GroupDataResponse(name=req.name, fields=groups[req.name])
