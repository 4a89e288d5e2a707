"""Gate rules: parsing, and each metric halting (or not) on figures either side of its limit."""

from __future__ import annotations

import pytest

from fleet_ops.rollout.gates import DeviceHealth, evaluate, parse_rules


def _fleet(n: int, **kw: object) -> list[DeviceHealth]:
    base = dict(drift=0.08, confidence=0.9, latency_p95=1800.0)
    base.update(kw)  # type: ignore[arg-type]
    return [DeviceHealth(f"d{i}", **base) for i in range(n)]  # type: ignore[arg-type]


def test_parse() -> None:
    rules = parse_rules("drift>0.2, latency_p95>+20%,confidence<-10%,failed>2%,silent>0,"
                        "errors>=1,failed>3")
    got = [(r.metric, r.op, r.value, r.relative, r.percent) for r in rules]
    assert got == [("drift", ">", 0.2, False, False), ("latency_p95", ">", 0.2, True, False),
                   ("confidence", "<", -0.1, True, False), ("failed", ">", 0.02, False, True),
                   ("silent", ">", 0.0, False, False), ("errors", ">=", 1.0, False, False),
                   ("failed", ">", 3.0, False, False)]
    for bad in ("drift", "drift>>1", "speed>1", "silent>5%", "latency_p95>+20", "x>1;rm"):
        with pytest.raises(ValueError):
            parse_rules(bad)


def test_drift_names_the_drifting_devices() -> None:
    took = _fleet(5)
    for d in took[:3]:
        d.drift = 0.45
    [b] = evaluate(parse_rules("drift>0.2"), took, _fleet(20))
    assert b.metric == "drift" and b.figure == pytest.approx((3 * 0.45 + 2 * 0.08) / 5)
    assert b.devices == ["d0", "d1", "d2"] and b.figures == {"d0": 0.45, "d1": 0.45, "d2": 0.45}
    assert "drift>0.2" in b.describe() and "d0" in b.describe()
    took[0].drift = took[1].drift = 0.1  # mean 0.164: under the limit
    assert evaluate(parse_rules("drift>0.2"), took, []) == []


def test_relative_latency_and_confidence() -> None:
    rules = parse_rules("latency_p95>+20%,confidence<-10%")
    assert evaluate(rules, _fleet(3, latency_p95=2100.0), _fleet(10)) == []  # +16.7 %
    [b] = evaluate(rules, _fleet(3, latency_p95=2700.0), _fleet(10))
    assert b.metric == "latency_p95" and b.figure == pytest.approx(0.5)
    assert b.compared_with == 1800.0 and len(b.devices) == 3
    [b] = evaluate(rules, _fleet(3, confidence=0.7), _fleet(10))
    assert b.metric == "confidence" and b.figure == pytest.approx(-0.2222, abs=1e-3)
    # the last step: no device left without it; the figures from before the rollout count
    [b] = evaluate(rules, _fleet(3, latency_p95=2700.0), [],
                   rest_figures={"latency_p95": 1800.0})
    assert b.metric == "latency_p95"
    assert evaluate(rules, _fleet(3, latency_p95=2700.0), []) == []  # nothing to compare


def test_counts_failed_silent_errors_resets() -> None:
    took = _fleet(50)
    took[7].failed = True
    assert evaluate(parse_rules("failed>2%"), took, []) == []  # 1 of 50: exactly 2 %
    took[9].failed = True
    [b] = evaluate(parse_rules("failed>2%"), took, [])
    assert b.devices == ["d7", "d9"] and b.figure == pytest.approx(0.04)
    took2 = _fleet(100)
    took2[1].failed = took2[2].failed = True
    assert evaluate(parse_rules("failed>2%"), took2, []) == []  # exactly 2 %
    took2[3].silent = True
    took2[4].errors, took2[5].resets = 3, 1
    got = {b.metric: b for b in evaluate(parse_rules("silent>0,errors>0,resets>0"), took2, [])}
    assert got["silent"].devices == ["d3"]
    assert got["errors"].figure == 3 and got["errors"].devices == ["d4"]
    assert got["resets"].devices == ["d5"]


def test_drifting_catches_a_subset_the_mean_hides() -> None:
    took = _fleet(10)
    took[4].drift, took[4].drifting = 0.6, True  # one device of ten alerts; the mean is 0.13
    assert evaluate(parse_rules("drift>0.2"), took, []) == []
    [b] = evaluate(parse_rules("drifting>5%"), took, [])
    assert (b.metric, b.figure, b.devices) == ("drifting", pytest.approx(0.1), ["d4"])
    assert evaluate(parse_rules("drifting>10%"), took, []) == []  # exactly 10 %: not above
    [b] = evaluate(parse_rules("drifting>0"), took, [])
    assert b.figure == 1.0 and b.devices == ["d4"]
    took[4].failed = True  # a device whose update failed does not run the model: not counted
    assert evaluate(parse_rules("drifting>0"), took, []) == []
