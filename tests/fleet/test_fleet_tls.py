"""MQTT over TLS with a throwaway CA (made here with ``cryptography``) and logins, on a real
Mosquitto: server verified by the CA, a client certificate where the broker requires one,
the password from a file or the environment; refusals are one line; no password in any
output or log."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_servers import Mosquitto, error_lines, free_port, running_mosquitto
from pki import Pki

from app.cli import main
from fleet_ops.fleet import mqtt
from fleet_ops.fleet.monitor import FleetMonitor
from fleet_ops.fleet.publisher import FleetPublisher

PASSWORD = "mq-Pa55-w0rd-91"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, Pki,
                                                                            int]]:
    folder = tmp_path_factory.mktemp("pki")
    pki = Pki(folder)
    passwords = folder / "passwd"
    passwords.write_text(f"station:{PASSWORD}\n")
    subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)  # hashes in place
    folder.chmod(0o755)
    for p in folder.iterdir():
        p.chmod(0o644)
    port, cert_port = free_port(), free_port()
    server_crt, server_key = pki.server  # type: ignore[attr-defined]
    user = "user root\n" if os.geteuid() == 0 else ""  # else it drops to 'mosquitto' and
    conf = (f"{user}per_listener_settings true\n"  # cannot read the test's files
            f"listener {port} 127.0.0.1\ncafile {pki.ca}\ncertfile {server_crt}\n"
            f"keyfile {server_key}\nallow_anonymous false\npassword_file {passwords}\n"
            f"listener {cert_port} 127.0.0.1\ncafile {pki.ca}\ncertfile {server_crt}\n"
            f"keyfile {server_key}\nrequire_certificate true\nallow_anonymous true\n")
    with running_mosquitto(conf, start=False) as broker:
        broker.port = port
        broker.start()
        yield broker, pki, cert_port


def test_tls_with_password_from_file_and_environment(
        tls_broker: tuple[Mosquitto, Pki, int], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    broker, pki, _ = tls_broker
    pwfile = tmp_path / "mqtt-password"
    pwfile.write_text(PASSWORD + "\n")
    view_url = f"mqtts://station@127.0.0.1:{broker.port}?ca={pki.ca}&password_file={pwfile}"
    monitor = FleetMonitor(view_url, fleet="tls", record_alerts=False)
    monkeypatch.setenv("TINYOPS_MQTT_PASSWORD", PASSWORD)
    monkeypatch.setenv("TINYOPS_MQTT_CA", str(pki.ca))
    publisher = FleetPublisher(f"mqtts://station@127.0.0.1:{broker.port}", "tls-1", fleet="tls")
    try:
        assert monitor.subscribed.wait(5) and publisher.link.connected
        for i in range(5):
            publisher.telemetry({"seq": i, "scores": {"a": 1.0}})
        publisher.close()
        dev = None
        for _ in range(100):
            dev = monitor.devices.get("tls-1")
            if dev is not None and dev.messages == 5:
                break
            monitor.link.wait(False, 0.05)
        assert dev is not None and dev.messages == 5
    finally:
        monitor.close()
    assert str(publisher.client.broker) == f"mqtts://station@127.0.0.1:{broker.port}"
    # the CLI, password from the environment: no password anywhere in what it says
    assert main(["fleet", "--mqtt", f"mqtts://station@127.0.0.1:{broker.port}",
                 "--fleet", "tls", "--duration", "0.5", "--json"]) == 0
    cap = capsys.readouterr()
    assert PASSWORD not in cap.out + cap.err + caplog.text


def test_tls_refusals_are_one_line_without_the_password(
        tls_broker: tuple[Mosquitto, Pki, int], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
        tinyops_home: Path) -> None:
    broker, pki, cert_port = tls_broker
    base = f"127.0.0.1:{broker.port}"
    monkeypatch.setenv("TINYOPS_MQTT_PASSWORD", "not-" + PASSWORD)
    cases = [
        (f"mqtts://station@{base}?ca={pki.other_ca}", 1, "TLS failed"),  # unknown CA
        (f"mqtt://station@{base}", 1, "a TLS port? then write mqtts://"),  # plain to TLS
        (f"mqtts://station@{base}?ca={pki.ca}", 1, "Not authorized"),  # wrong password
        (f"mqtts://station:{PASSWORD}@{base}?ca={pki.ca}&bogus=1", 2, "unknown option"),
        (f"http://station:{PASSWORD}@{base}", 2, "bad MQTT URL"),
        (f"mqtts://station@127.0.0.1:{cert_port}?ca={pki.ca}", 1, "client certificate"),
    ]
    for url, code, text in cases:
        assert main(["fleet", "--mqtt", url, "--duration", "0"]) == code, url
        err = error_lines(capsys.readouterr().err)
        assert text in err[0] and len(err) == 2 and err[1].startswith("  fix:"), (url, err)
        assert PASSWORD not in "\n".join(err)
    # a password written in the URL works (with a warning) and is never shown
    monkeypatch.delenv("TINYOPS_MQTT_PASSWORD")
    assert main(["fleet", "--mqtt", f"mqtts://station:{PASSWORD}@{base}?ca={pki.ca}",
                 "--duration", "0", "--json"]) == 0
    client_crt, client_key = pki.client  # type: ignore[attr-defined]
    assert main(["fleet", "--mqtt", f"mqtts://127.0.0.1:{cert_port}?ca={pki.ca}"
                 f"&cert={client_crt}&key={client_key}", "--duration", "0"]) == 0
    cap = capsys.readouterr()
    logs = "".join(p.read_text() for p in tinyops_home.rglob("*.log*") if p.is_file())
    assert "visible in the process list" in caplog.text
    assert PASSWORD not in cap.out + cap.err + caplog.text + logs


def test_broker_repr_and_redact_never_show_the_password() -> None:
    url = f"mqtts://u:{PASSWORD}@host:8883"
    broker = mqtt.parse_url(url)
    assert broker.password == PASSWORD and broker.tls and broker.port == 8883
    assert PASSWORD not in str(broker) + repr(broker) + mqtt.redact(url)
