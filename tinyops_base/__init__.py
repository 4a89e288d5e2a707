"""What both cores need, once: the layer below ``device_drivers`` and ``model_tools``.

- :mod:`tinyops_base.errors`: the ``TinyOpsError`` hierarchy (message, hint, exit code).
- :mod:`tinyops_base.progress`: ``Progress``, ``CancelToken``, ``sub_progress``.
- :mod:`tinyops_base.uf2`: the UF2 format (encoder and the one strict parser).
- :mod:`tinyops_base.validators`: argument checks shared by the CLIs.
- :mod:`tinyops_base.wire`: the data-only message format between a process and a child that
  runs untrusted models (JSON header plus raw numpy buffers, size-capped, never pickle).

It imports nothing from the rest of TinyOps and nothing from Qt (import-linter enforces both).
"""
