"""``describe``: the one mapping from any exception to message, hint and exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_drivers.errors import DisconnectedError, PortError
from device_drivers.flashing import Artifact, FlashResult, flash
from fleet_ops.records import open_store
from fleet_ops.records.device_ops import record_flash
from model_tools.errors import ModelInputError
from tinyops_base.errors import BUG_HINT, Cancelled, describe


def test_project_errors_keep_their_message_hint_and_code() -> None:
    said = describe(PortError("port /dev/x is busy", "close the other program"))
    assert (said.message, said.hint, said.exit_code) == ("port /dev/x is busy",
                                                         "close the other program", 2)
    assert said.expected and not said.cancelled
    assert describe(DisconnectedError("lost it")).exit_code == 1
    assert describe(ModelInputError("bad model", "pick another")).exit_code == 2


def test_cancellations_exit_130() -> None:
    for exc in (Cancelled("upload cancelled at 10/20 B"), KeyboardInterrupt()):
        said = describe(exc)
        assert said.cancelled and said.exit_code == 130
    assert describe(Cancelled("stopped at 3")).message == "stopped at 3"


def test_a_path_error_is_the_users_input_and_a_bug_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        open(tmp_path / "nope.bin")  # noqa: SIM115 - the real OSError, not a made-up one
    said = describe(info.value)
    assert said.exit_code == 2 and said.expected and str(tmp_path / "nope.bin") in said.message
    bug = describe(ZeroDivisionError("division by zero"))
    assert bug.message == "ZeroDivisionError: division by zero"
    assert bug.hint == BUG_HINT and not bug.expected and bug.exit_code == 1


class _Exploding:
    name = "exploding"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def flash(self, artifact: Artifact, port: str | None, options: object, progress: object,
              cancel: object) -> FlashResult:
        raise self.exc


@pytest.mark.parametrize(("exc", "outcome"), [(RuntimeError("a bug"), "failed"),
                                              (KeyboardInterrupt(), "cancelled")])
def test_flash_records_every_outcome_not_only_tinyops_errors(exc: BaseException,
                                                            outcome: str) -> None:
    artifact = Artifact(name="m.bin", data=b"\x01" * 64, kind="binary")
    with pytest.raises(type(exc)):
        flash(artifact, "/dev/null", backend=_Exploding(exc), recorder=record_flash)
    records = open_store().list(operation="flash")
    assert [r.result for r in records] == [outcome]
    assert records[0].artifact == "m.bin"
