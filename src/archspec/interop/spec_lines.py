"""One layer written as a spec line from its kind and converted arguments: positional arguments in
order, then keywords that differ from their defaults (`conv 64 3 stride=2 padding=1 bias=false`).
Readers of model files write their layers through here; parsing the line gives the same arguments."""

from __future__ import annotations

from typing import Any

from archspec.layers import REGISTRY
from archspec.layers.shape import sides_text


def spec_line(kind: str, attrs: dict[str, Any]) -> str:
    layer = REGISTRY[kind]
    words = [kind]
    for arg in layer.args:
        if arg.name not in attrs:
            continue
        value = attrs[arg.name]
        if not arg.positional and _same(value, arg.default):
            continue
        text = value_text(value)
        words.append(text if arg.positional else f"{arg.name}={text}")
    return " ".join(words)


def _same(value: Any, default: Any) -> bool:
    """Equal, floats compared as 32-bit floats (a file's epsilon 0.001 is 0.0010000000474974513)."""
    if isinstance(value, float) and isinstance(default, float):
        return _single(value) == _single(default)
    return value == default


def _single(value: float) -> float:
    import struct

    return struct.unpack("f", struct.pack("f", value))[0]


def value_text(value: Any) -> str:
    """An argument value as the spec writes it. Tuples are a size (`3x5`), symmetric padding
    (`((1, 1), (2, 2))` is `1x2`) or sides (`(0, 1, 0, 1)` is `0x1x0x1`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, tuple):
        if all(isinstance(v, tuple) for v in value):  # padding ((top, bottom), (left, right))
            (top, bottom), (left, right) = value
            return sides_text((top, bottom, left, right))
        if len(value) == 2 and value[0] == value[1]:
            return str(value[0])
        if len(value) == 4:
            return sides_text(value)
        return "x".join(str(v) for v in value)
    return str(value)  # words (`same`), Interval ranges (`0:58`), integers


def float_text(value: float) -> str:
    """The shortest text that reads back as the same 32-bit float (ONNX attributes are float32):
    `1e-05`, not `9.999999747378752e-06`."""
    for digits in range(1, 18):
        text = f"{value:.{digits}g}"
        if _single(float(text)) == _single(value):
            break
    return text
