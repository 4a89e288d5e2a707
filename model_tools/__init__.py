"""Model tools: load, verify, analyze, quantize, evaluate and export models for TFLite Micro.

Qt-free and independent of ``device_drivers``; TensorFlow is imported only inside the
functions that need it (conversion, float evaluation). tflite-micro runs in child processes.

Public API (import from the submodules):

- ``loading.load_model(path) -> LoadedModel`` (safe Keras loading, SavedModel, verified .tflite)
- ``verify.verify_tflite(data) -> TfliteModel`` (raises ``errors.InvalidModelError``)
- ``analyze.analyze(path, board=BoardLimits(...)) -> dict``, ``analyze.fit_verdict(...)``
- ``quantize.quantize(model, calib, eval_data=..., mode=..., output=...) -> QuantizeReport``
- ``evaluate.run_as_device(tflite_model, x) -> DeviceRun``, ``evaluate.compare(...)``
- ``tflm.check_model(data)``, ``tflm.measure_arena(data)``, ``tflm.run_model(data, x)``
- ``export.export_model(path, "c" | "arduino" | "uf2", out, ...) -> ExportResult``
- UF2 encoding and decoding: ``tinyops_base.uf2`` (shared with the flashing back ends)
- ``data.load_dataset(path, input_shape=..., labels=...) -> Dataset``
- ``card.read_card(model_path)`` / ``card.write_card(model_path, card)``

Long jobs take ``progress(fraction, message)`` and a ``cancel`` token (``.is_set()``).
"""
