"""Qt-free state and policy of the app: the link state machine, the flash handover, the live
feed. The Qt classes in ``app.gui`` are thin views over these; import-linter keeps this package
free of Qt (see ``pyproject.toml``), so it is tested without a display."""
