"""Converters (torch -> ONNX / TFLite, int8 quantisation, parity checks, model cards).

Imported as `squeezerface.converters`; needs the `convert` extra. The runtime never imports it.
"""
