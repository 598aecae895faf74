"""Ways in and out of the spec language: Keras source in (`keras_import`), code and ONNX out (`export_code`, `onnx`)."""
