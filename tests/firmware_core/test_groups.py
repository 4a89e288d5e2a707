"""The host build's standard groups through the real client (app.cli, device_drivers.link,
smpclient): info, MCUmgr params, enumeration as Zephyr 4.4 answers it, file upload + hash."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import fw_host
import pytest
from smp import enumeration_management as em
from smp import file_management as fsm
from smp import statistics_management as stm
from smpclient.requests import enumeration_management as enumreq
from smpclient.requests import file_management as fsreq

from device_drivers.link import DeviceSession
from device_drivers.link.smp_errors import SMPErrorResponse

GROUPS_BY_NAME = [10, 8, 0, 2, 64]
"""By name, as Zephyr: "enum mgmt", "fs mgmt", "os mgmt", "stat mgmt", "tinyops runtime"."""


def test_tinyops_info_reads_the_board(host_board) -> None:
    board = host_board("--board", "test-board")
    done = subprocess.run([sys.executable, "-m", "app.cli", "info", "--port", board.port,
                           "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["smp"] is True
    assert info["params"] == {"buf_size": 4096, "buf_count": 2}
    assert info["groups_source"] == "enumeration"
    assert set(info["groups"]) == {"os", "fs", "enum", "stat", "tinyops"}
    assert info["runtime"].startswith("tinyops-fw") and info["protocol"] == 1
    assert info["board"] == "test-board" and info["model"] is None
    assert "test-board" in info["app_info"]


def test_enumeration_answers_as_zephyr(host_board) -> None:
    with DeviceSession.open(host_board().port) as dev:
        assert dev.request(enumreq.CountSupportedGroups()).count == 5
        assert list(dev.request(enumreq.ListSupportedGroups()).groups) == GROUPS_BY_NAME
        first = dev.request(enumreq.GroupId(index=0))
        last = dev.request(enumreq.GroupId(index=4))
        assert (first.group, first.end) == (10, None)
        assert (last.group, last.end) == (64, True)
        with pytest.raises(SMPErrorResponse) as err:
            dev.request(enumreq.GroupId(index=5))
        assert err.value.rc == em.ENUM_MGMT_ERR.ENUM_MGMT_ERR_INDEX_TOO_LARGE
        details = dev.request(enumreq.GroupDetails(groups=(64, 2, 0, 99))).groups
        assert [(d.group, d.name, d.handlers) for d in details] == [
            (0, "os mgmt", 8), (2, "stat mgmt", 2), (64, "tinyops runtime", 6)]


def test_statistics_group_counts_the_transport(host_board) -> None:
    """Group 2 as Zephyr's stat_mgmt: the list of groups, a group's counters, an unknown
    name refused with STAT_MGMT_ERR_INVALID_STAT_NAME."""
    board = host_board()
    link = fw_host.RawLink(board.port)
    try:
        link.write(b"some console text\n")
        listed = stm.ListOfGroupsResponse.loads(link.request(bytes(stm.ListOfGroupsRequest(
            sequence=1).BYTES)))
        assert list(listed.stat_list) == ["smp", "runtime"]
        first = stm.GroupDataResponse.loads(link.request(bytes(stm.GroupDataRequest(
            name="smp", sequence=2).BYTES))).fields
        assert first["frames_in"] == 2 and first["frames_out"] == 1
        assert first["text_lines"] == 1 and first["frames_dropped"] == 0
        assert first["rx_dropped"] == 0
        link.write(b"\x06\x09AAAA!!!!\n")  # a bad frame
        again = stm.GroupDataResponse.loads(link.request(bytes(stm.GroupDataRequest(
            name="smp", sequence=3).BYTES))).fields
        assert again["frames_dropped"] == 1 and again["frames_out"] == 2
        runtime = stm.GroupDataResponse.loads(link.request(bytes(stm.GroupDataRequest(
            name="runtime", sequence=4).BYTES)))
        assert runtime.name == "runtime" and runtime.fields == {"inferences": 0}
        unknown = link.request(bytes(stm.GroupDataRequest(name="nope", sequence=5).BYTES))
        assert stm.StatisticsManagementErrorV2.loads(unknown).err.rc == \
            stm.STAT_MGMT_ERR.ERR_INVALID_STAT_NAME
    finally:
        link.close()


def test_upload_and_hash_through_the_link(host_board) -> None:
    board = host_board()
    data = os.urandom(20_000)
    with DeviceSession.open(board.port) as dev:
        result = dev.upload_file(data, "/lfs/model-a.tflite")
        assert result.verified and result.device_sha256 == hashlib.sha256(data).hexdigest()
        assert dev.file_sha256("/lfs/model-a.tflite") == hashlib.sha256(data).digest()
        status = dev.request(fsreq.FileStatus(name="/lfs/model-a.tflite"))
        assert status.len == len(data)
        crc = dev.request(fsreq.FileHashChecksum(name="/lfs/model-a.tflite"))  # default
        assert (crc.type, crc.output) == ("crc32", zlib.crc32(data))
        part = dev.request(fsreq.FileHashChecksum(name="/lfs/model-a.tflite", type="sha256",
                                                  off=100, len=1000))
        assert part.output == hashlib.sha256(data[100:1100]).digest() and part.off == 100
        types = dev.request(fsreq.SupportedFileHashChecksumTypes()).types
        assert set(types) == {"crc32", "sha256"}
        down = dev.request(fsreq.FileDownload(name="/lfs/model-a.tflite", off=0))
        assert down.len == len(data) and data.startswith(bytes(down.data))
    assert (board.state / "lfs" / "model-a.tflite").read_bytes() == data


def test_file_errors_are_zephyrs(host_board) -> None:
    E = fsm.FS_MGMT_ERR
    with DeviceSession.open(host_board().port) as dev:
        for request, rc in [
            (fsreq.FileStatus(name="/lfs/missing.bin"), E.FILE_NOT_FOUND),
            (fsreq.FileStatus(name="/other/x.bin"), E.FILE_NOT_FOUND),
            (fsreq.FileHashChecksum(name="/lfs/missing.bin", type="sha256"),
             E.FILE_NOT_FOUND),
            (fsreq.FileUpload(name="/other/x.bin", off=0, data=b"x", len=1),
             E.MOUNT_POINT_NOT_FOUND),
            (fsreq.FileUpload(name="/lfs/../x.bin", off=0, data=b"x", len=1),
             E.FILE_INVALID_NAME),
            (fsreq.FileUpload(name="rel.bin", off=0, data=b"x", len=1),
             E.FILE_INVALID_NAME),  # a relative path, as Zephyr answers
        ]:
            with pytest.raises(SMPErrorResponse) as err:
                dev.request(request)
            assert (err.value.group, err.value.rc) == (8, rc), request
        # an upload that skips ahead is refused with the offset the board expects
        dev.request(fsreq.FileUpload(name="/lfs/p.bin", off=0, data=b"abc", len=6))
        with pytest.raises(SMPErrorResponse) as err:
            dev.request(fsreq.FileUpload(name="/lfs/p.bin", off=5, data=b"x"))
        assert err.value.rc == E.FILE_OFFSET_NOT_VALID
        # too big for the storage: a write failure, not a hang
        with pytest.raises(SMPErrorResponse) as err:
            dev.request(fsreq.FileUpload(name="/lfs/big.bin", off=0, data=b"x",
                                         len=64 * 1024 * 1024))
        assert err.value.rc == E.FILE_WRITE_FAILED


def test_tinyops_flash_uploads_to_the_spare_slot_and_loads(host_board) -> None:
    """``tinyops flash`` against the host build: device-verified sha256, the model loads,
    and the next flash goes to the other model file (the running one is never written)."""
    model = Path(__file__).resolve().parents[2] / "resources/examples/vibration/model_int8.tflite"
    board = host_board()
    results = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "app.cli", "flash", str(model), "--port",
                               board.port, "--json"], capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout))
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    assert [r["dest"] for r in results] == ["/lfs/model-a.tflite", "/lfs/model-b.tflite"]
    assert all(r["verified"] and r["device_digest"] == sha for r in results)
    assert results[1]["previous_sha256"] == sha
    with DeviceSession.open(board.port) as dev:
        info = dev.model_info()
        assert (info.loaded, info.path, bytes(info.sha256).hex()) == (
            True, "/lfs/model-b.tflite", sha)
