"""Staged model rollouts to a fleet (design: ``docs/rollouts.md``).

``plan`` (dataclasses), ``store`` (state in the records database), ``preflight``, ``gates``,
``health``, ``orchestrator``; the MQTT side is ``transfer`` / ``agent`` / ``swarm``.
"""
