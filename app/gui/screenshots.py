"""Make the README's screenshots in a real X server (run it under Xvfb, no window manager).

    Xvfb :99 -screen 0 1440x900x24 &
    export DISPLAY=:99 TINYOPS_HOME=$(mktemp -d)
    uv run python -m app.gui.screenshots 1440x900            # and again with --kiosk
    Xvfb :98 -screen 0 1024x600x24 &                         # then DISPLAY=:98, 1024x600

Each run needs a fresh ``TINYOPS_HOME`` (the quantized example must not exist yet). PNGs go
to ``packaging/screenshots/<page>-<size>.png``.

It starts the app in demo mode, walks through the pages (live view, analyze + quantize the
example on the Model page, Flash, Records) and saves each screen with ImageMagick's
``import -window root`` (what is on the X screen, window size as the app chose it).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

OUT = Path(__file__).resolve().parents[2] / "packaging" / "screenshots"
Step = Callable[[], bool] | int  # wait until true, or sleep ms


def main() -> int:
    size = sys.argv[1] if len(sys.argv) > 1 else "1440x900"
    kiosk = "--kiosk" in sys.argv
    app = QApplication(sys.argv[:1])
    from app.gui import theme
    from app.gui.launch import place_window
    from app.gui.main_window import MainWindow, WindowOptions

    theme.apply(app)
    win = MainWindow(WindowOptions(demo=True, kiosk=kiosk))
    place_window(win, kiosk, (1440, 900))
    win.start()

    def shot(name: str) -> None:
        path = OUT / f"{name}-{size}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True)
        print("wrote", path)

    def script() -> Iterator[Step]:
        yield lambda: win.live.built and win.live.store.total_samples > 3000
        if kiosk:
            shot("kiosk")
            return
        win.message.dismiss()
        yield 500
        shot("live")
        win.show_page("model")
        page = win.model_page
        page.use_example()
        yield lambda: page.analysis is not None
        page.quantize()
        yield lambda: page.report is not None and page.analysis is not None and \
            "int8" in str(page.analysis.get("model"))
        win.message.dismiss()
        yield 800
        shot("model")
        win.show_page("flash")
        yield lambda: not win.flash_page.jobs and win.flash_page.records.rowCount() >= 0
        yield 1500
        shot("flash")
        win.show_page("records")
        yield 1500
        shot("records")

    steps = script()

    def advance() -> None:
        try:
            step = next(steps)
        except StopIteration:
            app.quit()
            return
        if isinstance(step, int):
            QTimer.singleShot(step, advance)
            return
        poll = QTimer(app)

        def check() -> None:
            if step():
                poll.stop()
                poll.deleteLater()
                advance()

        poll.timeout.connect(check)
        poll.start(100)

    QTimer.singleShot(0, advance)
    QTimer.singleShot(240_000, app.quit)  # never hang a docs build
    app.exec()
    win.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
