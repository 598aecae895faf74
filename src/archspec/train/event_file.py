"""TensorBoard's event-file format written directly: TFRecord framing around `Event` protocol buffers,
encoded by hand. Only the few messages `events` writes are here (scalars, text, a PNG image, the
session start); TensorBoard's own reader reads them back in the tests.

Why not tensorboardX: importing any part of it imports PyTorch when PyTorch is installed (its
package `__init__` loads its torch helpers), which cost every training process about 1 GB of memory
and 2.4 s. The format is small and fixed (tensorflow/core/util/event.proto, summary.proto,
tensor.proto; the record framing of tensorflow/core/lib/io/record_writer.cc), so it is written here.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

SESSION_START = 1  # SessionLog.SessionStatus.START
DT_STRING = 7  # tensorflow.DataType
_MASK_DELTA = 0xA282EAD8


# --- protocol buffer wire format -----------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values take ten bytes, as protobuf encodes them
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value) if value else b""


def _double(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", value)


def _float(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", value)


def _bytes(field: int, value: bytes) -> bytes:
    return _key(field, 2) + _varint(len(value)) + value


def event(step: int, *, summary: bytes | None = None, session_status: int | None = None, wall_time=None) -> bytes:
    """An `Event` holding a `Summary` (from `scalar`, `text`, `image`) or a `SessionLog`."""
    data = _double(1, time.time() if wall_time is None else wall_time) + _int(2, step)
    if summary is not None:
        data += _bytes(5, summary)
    if session_status is not None:
        data += _bytes(7, _int(1, session_status))
    return data


def version_event() -> bytes:
    """The first event of every file: the format version (`file_version`)."""
    return _double(1, time.time()) + _bytes(3, b"brain.Event:2")


def scalar(tag: str, value: float) -> bytes:
    """A `Summary` with one scalar (`simple_value`, a float32, as TensorBoard stores it)."""
    return _bytes(1, _bytes(1, tag.encode()) + _float(2, value))


def text(tag: str, markdown: str) -> bytes:
    """A `Summary` of the text plugin (a string tensor of shape [1]), as TensorBoard's Text tab reads it."""
    plugin = _bytes(1, _bytes(1, b"text") + _bytes(2, b""))  # TextPluginData of version 0 is empty
    shape = _bytes(2, _int(1, 1))  # TensorShapeProto with one dimension of size 1
    tensor = _int(1, DT_STRING) + _bytes(2, shape) + _bytes(8, markdown.encode())
    value = _bytes(1, f"{tag}/text_summary".encode()) + _bytes(9, plugin) + _bytes(8, tensor)
    return _bytes(1, value)


def image(tag: str, png: bytes, height: int, width: int, channels: int) -> bytes:
    """A `Summary` with one PNG image."""
    encoded = _int(1, height) + _int(2, width) + _int(3, channels) + _bytes(4, png)
    return _bytes(1, _bytes(1, tag.encode()) + _bytes(4, encoded))


def event_fields(record: bytes) -> dict[int, int | bytes]:
    """The top-level fields of an encoded `Event` (field number -> value; varints as ints)."""
    fields, offset = {}, 0
    while offset < len(record):
        key, offset = _read_varint(record, offset)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            fields[field], offset = _read_varint(record, offset)
        elif wire_type == 1:
            fields[field], offset = record[offset : offset + 8], offset + 8
        elif wire_type == 5:
            fields[field], offset = record[offset : offset + 4], offset + 4
        elif wire_type == 2:
            length, offset = _read_varint(record, offset)
            fields[field], offset = record[offset : offset + length], offset + length
        else:
            raise ValueError(f"unexpected protocol buffer wire type {wire_type}")
    return fields


def event_step(fields: dict[int, int | bytes]) -> int:
    step = int(fields.get(2, 0))
    return step - (1 << 64) if step >= 1 << 63 else step


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset


# --- TFRecord framing ----------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def _masked_crc(data: bytes) -> bytes:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    masked = (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF
    return struct.pack("<I", masked)


def frame(record: bytes) -> bytes:
    """One TFRecord: its length, the length's masked CRC-32C, the data, the data's masked CRC-32C."""
    length = struct.pack("<Q", len(record))
    return length + _masked_crc(length) + record + _masked_crc(record)


def read_records(path: Path) -> list[bytes]:
    """The complete records of a TFRecord file (a record cut short by a kill is left out)."""
    data = path.read_bytes()
    records, offset = [], 0
    while offset + 12 <= len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        end = offset + 12 + length + 4
        if end > len(data):
            break
        records.append(data[offset + 12 : offset + 12 + length])
        offset = end
    return records


class EventFile:
    """An event file `events.out.tfevents.<time>.<host><suffix>` in `folder`, written synchronously."""

    def __init__(self, folder: Path, suffix: str = "") -> None:
        import socket

        self.path = Path(folder) / f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}{suffix}"
        self._file = open(self.path, "ab")  # noqa: SIM115 (held open across epochs, closed by `close`)
        self.write(version_event())

    def write(self, record: bytes) -> None:
        self._file.write(frame(record))

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def write_records(path: Path, records: list[bytes]) -> None:
    """A whole TFRecord file of `records` (to rewrite one)."""
    with open(path, "wb") as file:
        for record in records:
            file.write(frame(record))
