"""Fleet telemetry over MQTT: topic layout, publishers (virtual board, USB bridge), the fleet
summary and drift alerts. The layout is written down in ``resources/protocol/fleet_mqtt.md``."""
