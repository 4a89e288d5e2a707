"""The TinyOps desktop app (PySide6 + pyqtgraph).

Only ``app/`` imports Qt. Nothing here imports TensorFlow at start-up: model jobs import
``model_tools`` inside worker functions, so the window opens in about a second.
Entry point: :func:`app.gui.launch.run`.
"""
