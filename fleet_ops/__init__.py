"""Operating many devices, not driving one: the provisioning records (SQLite or a shared
PostgreSQL fed through a local outbox), the fleet over MQTT (publishers, the fleet view,
drift) and staged model rollouts. Above ``device_drivers`` and ``model_tools`` (it flashes and
analyses through them), below ``app`` (the CLI and the GUI use it); Qt-free."""
