"""The virtual board's standard SMP groups, over a real pty with smpclient."""

from __future__ import annotations

import os
import struct
import zlib

import cbor2
import pytest
import serial
from smp import error as smperr
from smp import file_management as fsm
from smp import image_management as img
from smp import message as smpmsg
from smp import packet as smppacket
from smpclient.exceptions import SMPUploadError, SMPValidationException
from smpclient.requests import file_management as fsreq
from smpclient.requests import image_management as imgreq
from smpclient.requests import os_management as osreq
from smpclient.requests import statistics_management as statreq
from test_virtual_support import Client, sha

from device_drivers.flashing.smp import image_hash
from device_drivers.link.smp_errors import parse_response
from device_drivers.virtual.board import VirtualBoard
from device_drivers.virtual.limits import BoardLimits


@pytest.fixture(scope="module")
def board():
    with VirtualBoard(board="nano33ble", default_model=False) as vb:
        yield vb


@pytest.fixture(scope="module")
def client(board: VirtualBoard):
    with Client(board.port) as c:
        yield c


def test_echo_params_and_app_info(board: VirtualBoard, client: Client) -> None:
    assert client.request(osreq.EchoWrite(d="hello board")).r == "hello board"
    params = client.request(osreq.MCUMgrParametersRead())
    assert (params.buf_size, params.buf_count) == (board.profile.buf_size,
                                                   board.profile.buf_count)
    # smpclient sized its frames from the board's buf_size
    assert client.transport.max_unencoded_size == params.buf_size - 4
    info = client.request(osreq.OSApplicationInfoRead(format="snri"))
    assert info.output.split()[:3] == ["Zephyr", "nano33ble", "1.0.0"]
    assert "bootloader" in client.request(osreq.BootloaderInformationRead()).model_dump()


def test_task_memory_and_statistics_groups(board: VirtualBoard, client: Client) -> None:
    tasks = client.request(osreq.TaskStatisticsRead()).tasks
    assert "idle" in tasks and all(t.stksiz >= t.stkuse for t in tasks.values())
    pools = client.request(osreq.MemoryPoolStatisticsRead()).model_dump()
    assert pools["smp_buf"]["blksize"] == board.profile.buf_size
    groups = client.request(statreq.ListOfGroups()).stat_list
    assert "smp" in groups
    before = board.frames_ok
    data = client.request(statreq.GroupData(name="smp"))
    assert data.fields["frames_ok"] >= before  # counted before this request was answered
    err = client.request(statreq.GroupData(name="nope"))
    assert err.err.rc == 3  # STAT_MGMT_ERR.ERR_INVALID_STAT_NAME: what Zephyr 4.4 answers


class _UnknownGroup(smpmsg.ReadRequest):
    _GROUP_ID = 99
    _COMMAND_ID = 0


class _UnknownErr(smperr.ErrorV1):
    _GROUP_ID = 99


class UnknownGroupRead(_UnknownGroup):
    _Response = smpmsg.ReadResponse
    _ErrorV1 = _UnknownErr
    _ErrorV2 = _UnknownErr


def test_unknown_group_and_command_get_enotsup(client: Client) -> None:
    reply = client.request(UnknownGroupRead())
    assert reply.rc == smperr.MGMT_ERR.ENOTSUP
    # OS group, command 42: smp will not even build such a header, so pack it by hand
    frame = struct.pack("!BBHHBB", (1 << 3) | 0, 0, 1, 0, 77, 42) + cbor2.dumps({})
    answer = client.raw(frame)
    assert answer[6] == 77 and answer[7] == 42  # same sequence and command
    assert cbor2.loads(answer[8:])["rc"] == smperr.MGMT_ERR.ENOTSUP
    # a known command with a body that is not what the command takes
    bad = struct.pack("!BBHHBB", (1 << 3) | 2, 0, 3, 0, 78, 0) + cbor2.dumps({"x": 1})
    assert cbor2.loads(client.raw(bad)[8:])["rc"] == smperr.MGMT_ERR.EINVAL


def test_file_upload_hash_download_status(client: Client) -> None:
    data = os.urandom(20_000)
    offsets = client.upload_file(data, "/lfs/data/blob.bin")
    assert offsets[-1] == len(data) and len(offsets) >= 5  # several buf_size frames
    digest = client.request(fsreq.FileHashChecksum(name="/lfs/data/blob.bin", type="sha256"))
    assert digest.output == sha(data) and digest.len == len(data)
    crc = client.request(fsreq.FileHashChecksum(name="/lfs/data/blob.bin", type="crc32"))
    assert crc.output == zlib.crc32(data)
    part = client.request(fsreq.FileHashChecksum(name="/lfs/data/blob.bin", off=100, len=50))
    assert part.type == "crc32" and part.output == zlib.crc32(data[100:150])  # Zephyr's default
    assert part.off == 100 and part.len == 50
    assert client.request(fsreq.FileStatus(name="/lfs/data/blob.bin")).len == len(data)
    assert client.download_file("/lfs/data/blob.bin") == data
    types = client.request(fsreq.SupportedFileHashChecksumTypes()).types
    assert set(types) == {"sha256", "crc32"}
    assert isinstance(client.request(fsreq.FileClose()), fsm.FileCloseResponse)


def test_restarted_upload_truncates_and_bad_offsets_are_refused(board: VirtualBoard,
                                                               client: Client) -> None:
    name = "/lfs/restart.bin"
    client.upload_file(b"A" * 9000, name)
    client.upload_file(b"B" * 100, name)  # a new upload at off=0 starts a new file
    assert client.request(fsreq.FileStatus(name=name)).len == 100
    assert client.download_file(name) == b"B" * 100
    # Like Zephyr 4.4 the board adds the offset it expects ("len") to the error, a field
    # smpclient's error classes refuse; TinyOps' link reads it (tests/firmware/test_link.py).
    with pytest.raises(SMPValidationException, match="FileSystemManagementErrorV2"):
        client.request(fsreq.FileUpload(name=name, off=5000, data=b"x"))
    reply, _ = board.dispatcher.handle(fsreq.FileUpload(name=name, off=5000, data=b"x").BYTES)
    error = parse_response(fsreq.FileUpload(name=name, off=5000, data=b"x"), reply)
    assert error.err.rc == fsm.FS_MGMT_ERR.FILE_OFFSET_NOT_VALID
    assert error.extra == {"len": 100}


@pytest.mark.parametrize(("name", "rc"), [
    ("/other/x.bin", fsm.FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND),
    ("/lfs/../etc/passwd", fsm.FS_MGMT_ERR.FILE_INVALID_NAME),
    ("relative.bin", fsm.FS_MGMT_ERR.FILE_INVALID_NAME),
])
def test_bad_paths_are_refused(client: Client, name: str, rc: int) -> None:
    err = client.request(fsreq.FileUpload(name=name, off=0, data=b"x", len=1))
    assert err.err.rc == rc


def test_missing_file_and_full_storage(board: VirtualBoard, client: Client) -> None:
    assert client.request(fsreq.FileStatus(name="/lfs/none")).err.rc == \
        fsm.FS_MGMT_ERR.FILE_NOT_FOUND
    assert client.request(fsreq.FileDownload(name="/lfs/none", off=0)).err.rc == \
        fsm.FS_MGMT_ERR.FILE_NOT_FOUND
    # like Zephyr, a declared len is not checked up front: the write that does not fit fails
    too_big = board.limits.storage_size + 1
    first = client.request(fsreq.FileUpload(name="/lfs/big.bin", off=0, data=b"x", len=too_big))
    assert first.off == 1


def test_full_storage_fails_the_write_that_does_not_fit() -> None:
    limits = BoardLimits(id="tiny", name="tiny", mcu="x", flash=264 * 1024, ram=128 * 1024,
                         flash_reserve=256 * 1024, ram_reserve=64 * 1024)
    with VirtualBoard(limits=limits, default_model=False) as vb, Client(vb.port) as c:
        chunk = os.urandom(2000)
        off, answers = 0, []
        while off < 20_000:
            reply = c.request(fsreq.FileUpload(name="/lfs/fill.bin", off=off, data=chunk,
                                               len=20_000 if off == 0 else None))
            if not hasattr(reply, "off"):
                answers.append(reply.err.rc)
                break
            off = reply.off
        assert answers == [fsm.FS_MGMT_ERR.FILE_WRITE_FAILED]
        assert 0 < off <= limits.storage_size


def _slots(client: Client) -> dict[int, img.ImageState]:
    return {s.slot: s for s in client.request(imgreq.ImageStatesRead()).images}


def test_image_upload_test_reset_revert_then_confirm(client: Client, mcuboot_images) -> None:
    image = mcuboot_images.build(os.urandom(30_000), "2.1.3")
    digest = image_hash(image)
    client.upload_image(image)  # smpclient checks the board's `match` on the sha
    slots = _slots(client)
    assert slots[0].active and slots[0].confirmed and slots[0].version == "1.0.0"
    assert slots[1].version == "2.1.3" and slots[1].hash == digest and not slots[1].pending
    factory = slots[0].hash

    assert client.request(imgreq.ImageStatesWrite(hash=digest)).images[1].pending
    client.request(osreq.ResetWrite())
    slots = _slots(client)
    assert slots[0].hash == digest and not slots[0].confirmed  # testing the new image
    assert client.request(osreq.OSApplicationInfoRead(format="r")).output == "2.1.3"

    client.request(osreq.ResetWrite())  # no confirm: MCUboot reverts
    slots = _slots(client)
    assert slots[0].hash == factory and slots[0].confirmed

    client.request(imgreq.ImageStatesWrite(hash=digest))
    client.request(osreq.ResetWrite())
    client.request(imgreq.ImageStatesWrite(confirm=True))  # confirm the running image
    client.request(osreq.ResetWrite())
    slots = _slots(client)
    assert slots[0].hash == digest and slots[0].confirmed and slots[0].version == "2.1.3"


def test_image_errors_and_erase(board: VirtualBoard, client: Client) -> None:
    unknown = client.request(imgreq.ImageStatesWrite(hash=bytes(32)))
    assert unknown.err.rc == img.IMG_MGMT_ERR.HASH_NOT_FOUND
    too_big = client.request(imgreq.ImageUploadWrite(off=0, data=b"x", image=0,
                                                     len=board.limits.slot_size + 1))
    assert too_big.err.rc == img.IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE
    plain = os.urandom(5000)  # not an MCUboot image: hash = sha256 of the file
    with pytest.raises(SMPUploadError):  # the board reports match=False for a wrong sha
        client.run(_upload_with_sha(client, plain, sha(b"something else")))
    client.upload_image(plain)
    assert _slots(client)[1].hash == sha(plain)
    assert isinstance(client.request(imgreq.ImageErase()), img.ImageEraseResponse)
    assert 1 not in _slots(client)


async def _upload_with_sha(client: Client, data: bytes, wrong: bytes) -> None:
    first = imgreq.ImageUploadWrite(off=0, data=data[:2000], image=0, len=len(data), sha=wrong)
    reply = await client.smp.request(first)
    while reply.off < len(data):
        reply = await client.smp.request(
            imgreq.ImageUploadWrite(off=reply.off, data=data[reply.off: reply.off + 2000]))
    if reply.match is False:
        raise SMPUploadError("mismatch")


def test_garbage_on_the_line_is_counted_and_ignored(board: VirtualBoard, client: Client) -> None:
    bad_before = board.frames_bad
    noise = serial.Serial(board.port, timeout=0.2)  # a second opener, like a stray terminal
    try:
        noise.write(os.urandom(3000))
        noise.write(b"\n\x06\tnot base64 at all!!\n")
        noise.write(b"\x04\x14QUJD\n")  # a continuation with no start
        framed = b"".join(smppacket.encode(bytes(12)))
        noise.write(framed[:-6] + b"AAA=\n")  # a frame whose CRC does not match
        noise.write(b"\xff" * 10_000)  # a line with no end
        noise.write(b"\n")
        noise.flush()
    finally:
        noise.close()
    assert client.request(osreq.EchoWrite(d="still alive"), timeout_s=5).r == "still alive"
    assert board.frames_bad >= bad_before + 3
