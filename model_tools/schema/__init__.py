"""The TFLite FlatBuffer schema as data: ``tflite_schema.json`` (generated, checked in) and the
script that generates it (``generate_table.py``)."""
