"""Which panel a telemetry channel goes to, in which unit, with what readable name."""

from __future__ import annotations

from dataclasses import dataclass

WINDOWS_S = (1, 5, 10, 30, 60, 120, 300, 600)  # rolling windows offered, seconds


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    unit: str
    y_range: tuple[float, float] | None = None  # fixed range (scores), else autoscale
    order: int = 50


@dataclass(frozen=True)
class ChannelSpec:
    name: str  # the telemetry channel name
    panel: str
    label: str  # legend text
    scale: float = 1.0  # raw value * scale = value in the panel's unit


PANELS: dict[str, PanelSpec] = {
    p.key: p
    for p in (
        PanelSpec("scores", "Class scores", "", (0.0, 1.0), order=0),
        PanelSpec("signals", "Signals", "", order=5),
        PanelSpec("latency", "Inference latency", "ms", order=10),
        PanelSpec("memory", "Memory", "kB", order=20),
        PanelSpec("cpu", "CPU load", "%", order=30),
        PanelSpec("temp", "Temperature", "°C", order=40),
        PanelSpec("supply", "Supply voltage", "V", order=50),
    )
}

_KNOWN: dict[str, tuple[str, str, float]] = {
    "latency_us": ("latency", "Inference", 1e-3),
    "latency_ms": ("latency", "Inference", 1.0),
    "dsp_ms": ("latency", "DSP", 1.0),
    "classification_ms": ("latency", "classification", 1.0),
    "anomaly_ms": ("latency", "anomaly", 1.0),
    "arena_used": ("memory", "Arena used", 1 / 1024),
    "heap_free": ("memory", "Heap free", 1 / 1024),
    "heap_used": ("memory", "Heap used", 1 / 1024),
    "cpu_load": ("cpu", "CPU", 100.0),
    "temp_c": ("temp", "Die", 1.0),
    "vcc_mv": ("supply", "VCC", 1e-3),
}

SCORE_PREFIX = "score/"


def channel_spec(name: str) -> ChannelSpec:
    if name.startswith(SCORE_PREFIX):
        return ChannelSpec(name, "scores", name[len(SCORE_PREFIX):])
    known = _KNOWN.get(name)
    if known:
        panel, label, scale = known
        return ChannelSpec(name, panel, label, scale)
    if name.endswith("_us"):
        return ChannelSpec(name, "latency", name[:-3], 1e-3)
    if name.endswith("_ms"):
        return ChannelSpec(name, "latency", name[:-3], 1.0)
    return ChannelSpec(name, "signals", name)


def axis_label(panel: PanelSpec) -> str:
    return f"{panel.title} ({panel.unit})" if panel.unit else panel.title


def format_value(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "":
        return f"{value:.3g}"
    a = abs(value)
    digits = 2 if a < 10 else 1 if a < 100 else 0
    return f"{value:.{digits}f} {unit}"
