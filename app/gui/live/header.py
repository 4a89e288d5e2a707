"""The dashboard's header: the current class in large type, KPI tiles, cursor readout."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget


class KpiTile(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("kpi")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 4)
        lay.setSpacing(0)
        self.title = QLabel(self)
        self.title.setProperty("role", "muted")
        self.value = QLabel(self)
        f = self.value.font()
        f.setPointSizeF(f.pointSizeF() * 1.35)
        f.setWeight(QFont.Weight.DemiBold)
        self.value.setFont(f)
        lay.addWidget(self.title)
        lay.addWidget(self.value)

    def set(self, title: str, value: str) -> None:
        self.title.setText(title)
        self.value.setText(value)


class LiveHeader(QWidget):
    MAX_TILES = 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 0)
        outer.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(8)
        left = QVBoxLayout()
        left.setSpacing(0)
        self.caption = QLabel("Current class", self)
        self.caption.setProperty("role", "muted")
        self.label = QLabel("—", self)
        f = self.label.font()
        f.setPointSizeF(max(22.0, f.pointSizeF() * 2.4))
        f.setWeight(QFont.Weight.Bold)
        self.label.setFont(f)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score = QLabel("", self)
        self.score.setProperty("role", "muted")
        left.addWidget(self.caption)
        left.addWidget(self.label)
        left.addWidget(self.score)
        row.addLayout(left)
        row.addStretch(1)
        self.tiles = [KpiTile(self) for _ in range(self.MAX_TILES)]
        for tile in self.tiles:
            tile.hide()
            row.addWidget(tile, 0, Qt.AlignmentFlag.AlignBottom)
        outer.addLayout(row)
        self.cursor = QLabel(" ", self)
        self.cursor.setProperty("role", "muted")
        self.cursor.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.cursor)
        self._shown: tuple = ("init",)
        self.reset()

    def reset(self) -> None:
        self.show_state(None, None, None, [])

    def show_state(self, label: str | None, score: float | None, color: str | None,
                   kpis: list[tuple[str, str]]) -> None:
        state = (label, None if score is None else round(score, 2), color, tuple(kpis))
        if state == self._shown or getattr(self, "stale", False):
            return
        self._shown = state
        has_label = label is not None
        self.caption.setVisible(has_label)
        self.label.setVisible(has_label)
        self.score.setVisible(has_label)
        if has_label:
            self.label.setText(label.replace("_", " ").upper())
            style = f"color: {color};" if color else ""
            if style != self.label.styleSheet():
                self.label.setStyleSheet(style)
            self.score.setText("" if score is None else f"score {score:.2f}")
        for tile, kpi in zip(self.tiles, kpis, strict=False):
            tile.set(*kpi)
            tile.show()
        for tile in self.tiles[len(kpis):]:
            tile.hide()

    def set_stale(self, stale: bool, since: float | None = None) -> None:
        """Away: the class and tiles turn grey and say they are the last values seen."""
        import time

        self.stale = stale
        self.setProperty("stale", stale)
        grey = "color: #8a8a8a;" if stale else ""
        for tile in self.tiles:
            tile.value.setStyleSheet(grey)
        if stale:
            self.label.setStyleSheet(grey + " text-decoration: line-through;")
            when = time.strftime("%H:%M:%S", time.localtime(since)) if since else "earlier"
            self.caption.setText(f"Last class seen (at {when}, not live)")
        else:
            self.caption.setText("Current class")
            self._shown = ("stale",)  # redraw the live colours on the next update

    def show_cursor(self, text: str) -> None:
        self.cursor.setText(text or " ")


def header_state(panels: dict, top_label: str | None, label_index: dict[str, int]
                 ) -> tuple[str | None, float | None, str | None, list[tuple[str, str]]]:
    """What the header shows: the top class (the device's, else the best last score), its
    score and colour, and up to six KPI tiles (last value of each resource channel)."""
    from app.gui import theme
    from app.state.live_channels import PANELS, format_value

    scores = panels.get("scores")
    label, score = top_label, None
    if scores and scores.curves:
        last = {c.label: c.ring.last() for c in scores.curves.values()}
        last = {k: v[1] for k, v in last.items() if v is not None}
        if last:
            best = max(last, key=last.__getitem__)
            label = label if label in last else best
            score = last[label]
    color = None
    if label is not None:
        color = theme.label_color(label, label_index.get("scores" + "score/" + label, 0))
    kpis = []
    for key in ("latency", "memory", "cpu", "temp", "supply"):
        panel = panels.get(key)
        if not panel:
            continue
        for curve in panel.curves.values():
            value = curve.ring.last()
            if value is not None:
                title = PANELS[key].title if len(panel.curves) == 1 else curve.label
                kpis.append((title, format_value(value[1], PANELS[key].unit)))
    return label, score, color, kpis[:6]
