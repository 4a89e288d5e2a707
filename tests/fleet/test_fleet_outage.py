"""The fleet view and the stations across a broker outage, on a real Mosquitto: SIGKILL and
restart under a running view with 20 publishing devices (half QoS 0, half QoS 1: the loss of
each measured), a station started before its broker, a device that goes silent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from fleet_servers import running_mosquitto

from fleet_ops.fleet.monitor import FleetMonitor
from fleet_ops.fleet.publisher import FleetPublisher


def wait_until(cond: Callable[[], bool], timeout: float, what: object = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.05)


class Devices:
    """``n`` publishers sending one numbered message each every ``1/rate`` s."""

    def __init__(self, url: str, fleet: str, n: int, rate: float) -> None:
        self.pubs = [FleetPublisher(url, f"dev-{i:02d}", fleet=fleet, qos=i % 2)
                     for i in range(n)]
        self.rate, self.seq = rate, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(1 / self.rate):
            for p in self.pubs:
                p.telemetry({"seq": self.seq, "scores": {"a": 0.9, "b": 0.1},
                             "latency_us": 1000})
            self.seq += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for p in self.pubs:
            p.close()


def test_broker_killed_and_restarted_under_a_running_view() -> None:
    lost, _sent = _outage("", outage_periods=30)  # Mosquitto's defaults
    assert lost[0] >= 10 * 20  # QoS 0: what was sent while the broker was away is gone
    # QoS 1: only what the broker had acknowledged but not yet forwarded when it was killed
    assert lost[1] <= 10 * 5, lost


@pytest.mark.soak
def test_long_outage_with_the_brokers_default_queue() -> None:
    """30 s without a broker: 10 QoS 1 stations then send 300 messages each at once, 3x
    Mosquitto's default per-subscriber queue (1 000) — which the view's QoS 0 subscription
    does not use (with a QoS 1 subscription 2 071 of 3 760 were lost here)."""
    lost, _sent = _outage("", outage_periods=300, complete=False)
    assert lost[1] <= 10 * 5 and lost[0] >= 10 * 250, lost


def _outage(conf: str, outage_periods: int,
            complete: bool = True) -> tuple[dict[int, int], int]:
    with running_mosquitto(conf) as broker:
        monitor = FleetMonitor(broker.url, fleet="outage", record_alerts=False)
        seen: dict[str, set[int]] = {}
        monitor.on_counted = lambda dev, data: seen.setdefault(dev, set()).add(data["seq"])
        devices = Devices(broker.url, "outage", 20, rate=10)
        try:
            assert monitor.subscribed.wait(5)
            devices.thread.start()
            wait_until(lambda: len(seen) == 20 and min(map(len, seen.values())) >= 10, 20)
            broker.kill()
            wait_until(lambda: not monitor.summary()["broker"]["connected"], 10, "still up")
            down = monitor.summary()
            assert down["broker"]["unreachable_since"] and down["broker"]["reason"]
            assert {d["state"] for d in down["devices"]} == {"unknown"}  # not "online"
            killed_at = devices.seq
            wait_until(lambda: devices.seq >= killed_at + outage_periods, outage_periods)
            broker.start()
            wait_until(lambda: monitor.summary()["broker"]["connected"], 20)
            restarted_at = devices.seq
            # stations come back by themselves (bounded backoff: at most 10 s apart)
            wait_until(lambda: all(p.link.connected for p in devices.pubs), 30)
            all_back = devices.seq
            wait_until(lambda: devices.seq >= all_back + 20, 20)
            # 'silent' until a station's backlog arrives (RESUME_DELAY_S after it is back)
            wait_until(lambda: {d["state"] for d in monitor.summary()["devices"]} == {"online"},
                       30, lambda: [(d["device_id"], d["state"])
                                    for d in monitor.summary()["devices"]])
        finally:
            devices.close()
        last = devices.seq - 1
        qos1 = [f"dev-{i:02d}" for i in range(1, 20, 2)]
        if complete:  # every QoS 1 device's last message arrives: the view counts again
            wait_until(lambda: all(last in seen.get(d, ()) for d in qos1), 30,
                       lambda: {d: max(seen.get(d, {0})) for d in qos1})
        else:  # the broker may drop some: wait until nothing more comes (1 s apart)
            counts: list[int] = []
            wait_until(lambda: counts.append(sum(map(len, seen.values()))) is None and
                       len(counts) > 20 and counts[-1] == counts[-21], 60)
        # the stations said goodbye on close (retained "offline"): wait for the last of them
        wait_until(lambda: {d["state"] for d in monitor.summary()["devices"]} == {"offline"},
                   20, lambda: [(d["device_id"], d["state"])
                                for d in monitor.summary()["devices"]])
        summary = monitor.summary()
        monitor.close()
    lost = {q: sum(last + 1 - len(seen.get(f"dev-{i:02d}", ())) for i in range(q, 20, 2))
            for q in (0, 1)}
    sent = 10 * (last + 1)
    for i in (1, 3):
        got = seen.get(f"dev-{i:02d}", set())
        miss = sorted(set(range(last + 1)) - got)
        print(f"dev-{i:02d} missing {len(miss)}: {miss[:3]}..{miss[-3:]} killed at {killed_at}, "
              f"restarted at {restarted_at}")
    print(f"outage of {restarted_at - killed_at} periods: QoS 0 lost {lost[0]} of {sent}, "
          f"QoS 1 lost {lost[1]} of {sent}")
    assert summary["broker"]["connected"] and summary["broker"]["reconnects"] >= 1
    assert {d["state"] for d in summary["devices"]} == {"offline"}  # they said goodbye
    for i in range(0, 20, 2) if complete else ():  # QoS 0 devices count again too
        assert last in seen[f"dev-{i:02d}"]
    return lost, sent


def test_station_started_before_its_broker_connects_later() -> None:
    with running_mosquitto(start=False) as broker:
        publisher = FleetPublisher(broker.url, "early-1", fleet="early")
        assert not publisher.link.connected
        for i in range(20):
            publisher.telemetry({"seq": i, "scores": {"a": 1.0}})
        broker.start()
        monitor = FleetMonitor(broker.url, fleet="early", record_alerts=False)
        try:
            wait_until(lambda: publisher.link.connected, 20)
            for i in range(20, 25):
                publisher.telemetry({"seq": i, "scores": {"a": 1.0}})
            # what waited goes RESUME_DELAY_S after connecting: the view, subscribed by then,
            # counts all 25 in order
            wait_until(lambda: monitor.devices.get("early-1") is not None and
                       monitor.devices["early-1"].messages >= 25, 20, monitor.summary)
            (dev,) = monitor.summary()["devices"]
            assert dev["state"] == "online"
        finally:
            publisher.close()
            monitor.close()
        assert publisher.published == 25 and publisher.dropped == 0


def test_a_device_that_stops_sending_is_silent_before_its_last_will() -> None:
    with running_mosquitto() as broker:
        monitor = FleetMonitor(broker.url, fleet="quiet", record_alerts=False,
                               silent_periods=3)
        publisher = FleetPublisher(broker.url, "q-1", fleet="quiet")
        try:
            assert monitor.subscribed.wait(5)
            for i in range(10):
                publisher.telemetry({"seq": i, "scores": {"a": 1.0}})
                time.sleep(0.1)  # the device's own reporting period (not synchronisation)
            wait_until(lambda: monitor.summary()["devices"] and
                       monitor.summary()["devices"][0]["messages"] == 10, 10)
            assert monitor.summary()["devices"][0]["state"] == "online"
            stopped = time.monotonic()
            wait_until(lambda: monitor.summary()["devices"][0]["state"] == "silent", 15)
            # 3 periods of at least 1 s: not before 3 s, and well before any keepalive expiry
            assert 2.9 <= time.monotonic() - stopped <= 10
        finally:
            publisher.close()
            monitor.close()


def test_cli_says_the_broker_is_gone_and_exits_1(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import main

    with running_mosquitto() as broker:
        def run(monitor: FleetMonitor, _duration: float) -> None:  # the broker dies mid-run
            broker.kill()
            assert monitor.link.wait(False, 10)

        monkeypatch.setattr(FleetMonitor, "run", run)
        assert main(["fleet", "--mqtt", broker.url, "--duration", "5"]) == 1
        out = capsys.readouterr().out
        assert f"broker {broker.url} unreachable since " in out and "counts incomplete" in out
        assert main(["fleet", "--mqtt", broker.url, "--duration", "0", "--json"]) == 1
        capsys.readouterr()
