"""Turn what the user picked into what a back end flashes (shared by the CLI and the GUI).

A ``.tflite`` model headed for a UF2 board becomes a UF2 image placing it at the board's
model region; one headed for an Arduino board becomes the generated Arduino library. This
is where ``model_tools`` (export) and ``device_drivers`` (artifacts, back ends, registry)
meet, so it lives in ``app/`` — the only layer allowed to import both — and has no Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from device_drivers.errors import InputError

if TYPE_CHECKING:
    from device_drivers.flashing import PreparedFlash


def prepare_artifact(path: str, backend: str | None, board_id: str | None,
                     workdir: Path) -> PreparedFlash:
    """Prepare the flash of ``path`` once (:func:`device_drivers.flashing.prepare`: loaded
    and sniffed once, the board looked up once, the back end chosen); a model headed for
    uf2/arduino is exported first (into ``workdir``) and prepared as that artifact, with the
    same board entry. Other artifacts and back ends pass through unchanged."""
    from device_drivers.flashing import Artifact, PreparedFlash, prepare

    job = prepare(path, board_id, backend)
    artifact, board, name = job.artifact, job.board, job.backend
    if artifact.kind != "model" or name not in ("uf2", "arduino"):
        return job
    digest = artifact.sha256
    if name == "uf2":
        region, family = getattr(board, "model_region", None), getattr(board, "uf2_family", None)
        if region is None:
            raise InputError("a UF2 flash needs the board's model region",
                             "pass --board ID of a UF2 board (e.g. pico, feather_rp2040)")
        from tinyops_base.uf2 import encode_uf2

        if artifact.size > region.size:
            raise InputError(f"{artifact.name} ({artifact.size} B) exceeds {board.id}'s model "
                             f"region ({region.size} B)", "quantize the model to int8")
        data = encode_uf2(artifact.data, region.address, family)
        image = Artifact.from_bytes(data, Path(artifact.name).stem + ".uf2", kind="uf2",
                                    model_sha256=digest)
        return PreparedFlash(image, board, "uf2")
    from model_tools.export import export_model

    result = export_model(path, "arduino", workdir)
    lib = Path(result.files[0]).parent.parent
    return PreparedFlash(Artifact.load(lib, kind="arduino-sketch", model_sha256=digest),
                         board, "arduino")
