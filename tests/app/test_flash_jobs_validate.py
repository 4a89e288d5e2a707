"""A validation whose host reference fails still writes its record (result failed, the
error text), on both paths of the Flash page's job: the window's open session, and its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_drivers import paths
from device_drivers.link.session import DeviceSession
from fleet_ops.records import open_store
from model_tools.errors import ModelToolsError
from model_tools.tflm import tflm_available

pytestmark = pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")
EXAMPLE = paths.resources_dir() / "examples" / "vibration"


@pytest.fixture
def starved_tflm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's TFLM worker gets too little address space to start: the reference fails
    with model_tools' error (not a device_drivers one)."""
    monkeypatch.setenv("TINYOPS_TFLM_MAX_AS_MB", "48")


@pytest.mark.parametrize("shared", [True, False], ids=["window-session", "own-session"])
def test_a_failing_host_reference_is_recorded(virtual_board, starved_tflm, shared: bool,
                                              tmp_path: Path) -> None:
    from app.gui.pages.flash_jobs import validate_job

    model = EXAMPLE / "model_int8.tflite"
    args = (str(model), str(EXAMPLE / "eval.npz"), virtual_board.port)
    if shared:
        with DeviceSession.open(virtual_board.port) as dev, \
                pytest.raises(ModelToolsError) as err:
            validate_job(*args, session=dev, limit=4, usb_serial="SER1")
    else:
        with pytest.raises(ModelToolsError) as err:
            validate_job(*args, limit=4)
    assert "tflite-micro crashed" in err.value.message
    recs = open_store().list(operation="validate")
    assert len(recs) == 1
    rec = recs[0]
    assert (rec.result, rec.verify, rec.artifact) == ("failed", "not run", model.name)
    assert rec.error == err.value.message
    assert rec.port == virtual_board.port and rec.duration_s is not None
