"""The device link against real Zephyr 4.4 SMP servers: transports, frame sizing, groups."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from device_drivers.errors import DeviceError
from device_drivers.link import DeviceSession
from device_drivers.link.transport import LinkOptions


def _tinyops(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_stock_zephyr_takes_an_upload_it_used_to_drop(firmware) -> None:
    fw = firmware("native_sim_serial")
    data = os.urandom(6000)
    with DeviceSession.open(fw.port) as dev:
        assert dev.params() == {"buf_size": 384, "buf_count": 4}
        result = dev.upload_file(data, "/lfs1/model.bin")
    assert result.verify_method == "sha256"
    assert result.device_sha256 == hashlib.sha256(data).hexdigest()
    # it did measure: the advertised 380 B frame overran the 2-line receive pool ...
    assert "measured" in result.frames and "window 1" in result.frames
    assert any("drops 380 B frames" in note for note in result.notes)
    assert fw.wait_for_output("Insufficient buffers, fragment dropped", 0) is not None


def test_a_device_that_takes_big_frames_gets_them(firmware) -> None:
    fw = firmware("native_sim_serial_fs")
    data = os.urandom(7000)  # its littlefs holds 4 x 4 KiB blocks
    with DeviceSession.open(fw.port) as dev:
        plan = dev.frame_plan()
        assert (plan.message, plan.window, plan.source) == (1020, 2, "params")
        result = dev.upload_file(data, "/lfs1/m.bin")
    assert result.verified and result.notes == ()
    assert fw.wait_for_output("Insufficient buffers", 0) is None


def test_a_missing_group_is_named_not_blamed_on_the_cable(firmware) -> None:
    fw = firmware("native_sim_serial_buf256")
    with DeviceSession.open(fw.port) as dev, pytest.raises(DeviceError) as caught:
        dev.upload_file(b"x" * 1000, "/lfs1/m.bin")
    text = str(caught.value)
    assert "file management group (MCUmgr fs)" in text
    assert "CONFIG_MCUMGR_GRP_FS" in text
    assert "cable" not in text


def test_a_server_without_params_works_and_info_has_no_traceback(firmware) -> None:
    fw = firmware("native_sim_serial_noparams")
    with DeviceSession.open(fw.port) as dev:
        assert dev.params() is None
        plan = dev.frame_plan()
        # no params: smpclient's 2-line default, then grown while the device answers
        assert plan.source == "measured" and plan.message > 169
        assert any("grown by measurement" in note for note in plan.notes)
        text = "n" * (plan.message - 40)
        assert dev.echo(text, timeout_s=5.0) == text
    done = _tinyops("info", "--port", fw.port, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = json.loads(done.stdout)
    assert out["smp"] is True and out["params"] is None
    assert out["groups"] == ["os", "stat", "enum"]


def test_a_bigger_buffer_is_filled_when_the_device_takes_it(firmware) -> None:
    fw = firmware("native_sim_serial_buf1024")
    with DeviceSession.open(fw.port) as dev:
        assert dev.params() == {"buf_size": 1024, "buf_count": 4}
        plan = dev.frame_plan()
        text = "b" * (plan.message - 40)
        assert dev.echo(text, timeout_s=5.0) == text


def test_the_raw_transport_is_detected_on_the_same_port_string(firmware) -> None:
    fw = firmware("native_sim_serial_raw")
    done = _tinyops("info", "--port", fw.port, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["transport"] == "raw" and out["params"] == {"buf_size": 384, "buf_count": 4}
    with DeviceSession.open(fw.port, options=LinkOptions(transport="raw")) as dev:
        assert dev.transport_kind == "raw"
        text = "r" * 300
        assert dev.echo(text) == text


@pytest.mark.parametrize("name", ["native_sim_udp", "native_sim_udp6"])
def test_udp_ipv4_and_ipv6(firmware, name: str) -> None:
    fw = firmware(name)
    with DeviceSession.open(fw.port) as dev:
        assert dev.transport_kind == "udp"
        assert dev.params() == {"buf_size": 2048, "buf_count": 2}
        assert dev.echo("over udp") == "over udp"
        if name == "native_sim_udp":  # the one with a file system
            data = os.urandom(5000)
            result = dev.upload_file(data, "/lfs1/u.bin")
            assert result.device_sha256 == hashlib.sha256(data).hexdigest()


def test_smp_over_the_zephyr_shell_transport(firmware) -> None:
    fw = firmware("native_sim_shell")
    with DeviceSession.open(fw.port) as dev:
        assert dev.transport_kind == "console"
        plan = dev.frame_plan()
        text = "s" * (plan.message - 40)
        assert dev.echo(text, timeout_s=5.0) == text


def test_expert_frame_settings_skip_the_measurement(firmware) -> None:
    fw = firmware("native_sim_serial")
    data = os.urandom(3000)
    options = LinkOptions(mtu=128, window=1)
    with DeviceSession.open(fw.port, options=options) as dev:
        plan = dev.frame_plan()
        assert (plan.message, plan.window, plan.source) == (128, 1, "options")
        result = dev.upload_file(data, "/lfs1/x.bin")
    assert result.verified
    assert fw.wait_for_output("Insufficient buffers", 0) is None


def test_flash_cli_on_stock_zephyr_verifies_with_the_device_hash(firmware, tmp_path) -> None:
    fw = firmware("native_sim_serial")
    model = tmp_path / "m.tflite"
    model.write_bytes(os.urandom(4000))
    done = _tinyops("flash", str(model), "--port", fw.port, "--dest", "/lfs1/m.tflite",
                    "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["verified"] is True
    assert out["device_digest"] == hashlib.sha256(model.read_bytes()).hexdigest()


def test_a_udp_address_that_is_not_one_is_a_usage_error() -> None:
    done = _tinyops("info", "--port", "udp://nohost", "--json")
    assert done.returncode == 2
    assert "udp://HOST:PORT" in done.stderr and "Traceback" not in done.stderr


def test_the_next_session_on_the_port_reuses_what_was_measured(firmware) -> None:
    fw = firmware("native_sim_serial")
    with DeviceSession.open(fw.port) as dev:
        first = dev.frame_plan()
    assert first.source == "measured"
    drops = fw.log_text().count("Insufficient buffers")
    assert drops > 0
    with DeviceSession.open(fw.port) as dev:
        again = dev.frame_plan()
        result = dev.upload_file(os.urandom(2000), "/lfs1/again.bin")
    assert again.source == "remembered"
    assert (again.message, again.window) == (first.message, first.window)
    assert result.verified
    assert fw.log_text().count("Insufficient buffers") == drops  # no probe dropped this time


def test_zephyrs_wrong_offset_answer_is_understood(firmware) -> None:
    """Zephyr answers a chunk at the wrong offset with ``err`` plus the offset it expects
    (``len``), which smpclient's error classes reject: the link reads it, and an upload
    resumes from there instead of calling the answer garbage."""
    from smpclient.requests import file_management as fsreq

    from device_drivers.link.smp_errors import SMPErrorResponse
    from device_drivers.link.upload import FileTarget, windowed_upload

    fw = firmware("native_sim_serial")
    data = os.urandom(1500)
    with DeviceSession.open(fw.port) as dev:
        dev.request(fsreq.FileUpload(name="/lfs1/r.bin", off=0, data=data[:100],
                                     len=len(data)))
        with pytest.raises(SMPErrorResponse) as caught:
            dev.request(fsreq.FileUpload(name="/lfs1/r.bin", off=700, data=data[700:750]))
        assert caught.value.rc == 11 and caught.value.group == 8
        assert caught.value.response.extra == {"len": 100}

        class Midway(FileTarget):
            """Starts where the host wrongly believes the device is (a lost answer)."""

            def request(self, off: int, chunk: bytes, total: int):  # type: ignore[override]
                if off == 0 and chunk and not getattr(self, "sent", False):
                    self.sent = True
                    return fsreq.FileUpload(name=self.name, off=700, data=data[700:750])
                return super().request(off, chunk, total)

        outcome = windowed_upload(dev, data, Midway("/lfs1/r.bin"), window=1)
        assert outcome.retries == 1 and int(outcome.last.off) == len(data)
        dev.request(fsreq.FileClose())
        assert dev.file_sha256("/lfs1/r.bin") == hashlib.sha256(data).digest()
