"""Faults a client (or a broken pipe) can put on the stream, sent as raw bytes to `cnn-arch server` over
real stdio: every request gets its JSON-RPC error, the server stays up, and the framing recovers at the
next header. One server process for the module, driven in order (its first request comes before
`initialize`)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading

import pytest

pytestmark = pytest.mark.slow  # a server process

TIMEOUT = 60


def frame(body: bytes | str) -> bytes:
    body = body.encode() if isinstance(body, str) else body
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def message(**fields) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", **fields}))


class RawClient:
    """The server's process, its responses read from stdout into a queue as they come."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cnn_arch", "server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.process.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line == b"\r\n":
                    break
            self.replies.put(json.loads(out.read(length)))

    def send(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def reply(self, id=None, *, method: str | None = None) -> dict:
        """The next response to `id` (a notification of `method` instead, when given); others are skipped."""
        while True:
            found = self.replies.get(timeout=TIMEOUT)
            if method is not None and found.get("method") == method:
                return found
            if method is None and "method" not in found and found.get("id") == id:
                return found

    def alive(self, id: int) -> None:
        """The server still answers a valid request."""
        self.send(message(id=id, method="textDocument/hover", params=HOVER))
        assert self.reply(id) == {"jsonrpc": "2.0", "id": id, "result": None}


URI = "file:///tmp/faults.arch"
HOVER = {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 1}}


@pytest.fixture(scope="module")
def client():
    raw = RawClient()
    yield raw
    raw.process.kill()
    raw.process.wait()


def test_a_request_before_initialize_is_refused_then_the_session_starts(client):
    client.send(message(id=1, method="textDocument/hover", params=HOVER))
    assert client.reply(1)["error"]["code"] == -32002
    client.send(message(id=2, method="initialize", params={"capabilities": {}}))
    assert "capabilities" in client.reply(2)["result"]
    client.send(message(method="initialized", params={}))
    client.alive(3)


def test_invalid_params_get_minus_32602(client):
    client.send(message(id=10, method="textDocument/hover", params=None))
    error = client.reply(10)["error"]
    assert error["code"] == -32602 and "textDocument/hover" in error["message"]
    negative = {"textDocument": {"uri": URI}, "position": {"line": -1, "character": -5}}
    client.send(message(id=11, method="textDocument/hover", params=negative))
    error = client.reply(11)["error"]
    assert error["code"] == -32602 and "params.position" in error["message"]
    client.send(message(method="textDocument/didChange", params=None))  # a notification: nothing to answer
    at = {"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}}
    changes = {"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"range": at, "text": "x"}]}
    client.send(message(method="textDocument/didChange", params=changes))
    client.alive(12)


def test_a_change_is_read_as_pygls_would_or_left_to_it():
    """didChange notifications skip pygls' dispatch (a keystroke's cost in a burst): read exactly when
    they have the protocol's shape; anything else goes to pygls, which reports what is wrong."""
    from cnn_arch.server.transport import did_change

    def change(*edits, version=3):
        return {"params": {"textDocument": {"uri": URI, "version": version}, "contentChanges": list(edits)}}

    span = {"start": {"line": 2, "character": 4}, "end": {"line": 3, "character": 0}}
    assert did_change(change({"range": span, "text": "x"}, {"text": "whole"})) == (
        URI,
        3,
        [((2, 4), (3, 0), "x"), (None, None, "whole")],
    )
    negative = {**span, "end": {"line": 3, "character": -1}}
    for wrong in (
        change({"range": negative, "text": "x"}),
        change({"range": span, "text": 5}),
        change({"range": {"start": span["start"]}, "text": "x"}),
        change({"text": "x"}, version=True),
        {"params": None},
    ):
        assert did_change(wrong) is None


def test_malformed_json_and_unknown_methods(client):
    client.send(frame(b'{"jsonrpc": "2.0", "id": 20, "method": '))
    assert client.reply(None)["error"]["code"] == -32700
    client.send(frame(b"[1, 2, 3]"))
    assert client.reply(None)["error"]["code"] == -32600
    client.send(frame(b'{"jsonrpc": "2.0", "id": true, "method": "shutdown"}'))
    assert client.reply(None)["error"]["code"] == -32600
    client.send(message(id=21, method="cnn-arch/noSuchMethod", params={}))
    assert client.reply(21)["error"]["code"] == -32601
    client.alive(22)


def test_a_huge_content_length_is_refused_and_the_next_message_read(client):
    client.send(b"Content-Length: 999999999999\r\n\r\n" + b'{"jsonrpc": "2.0", "id": 30, "method": "shutdown"}')
    client.send(message(id=31, method="textDocument/hover", params=HOVER))  # the next frame, glued on
    assert client.reply(None)["error"]["code"] == -32600
    shown = client.reply(method="window/showMessage")["params"]["message"]
    assert "999,999,999,999 bytes is over the server's limit" in shown
    assert client.reply(31)["result"] is None


def test_framing_recovers_at_the_next_header(client):
    body = json.dumps({"jsonrpc": "2.0", "id": 40, "method": "textDocument/hover", "params": HOVER}).encode()
    client.send(b"Content-Length: %d\r\n\r\n" % (len(body) - 10) + body)  # 10 bytes short
    assert client.reply(None)["error"]["code"] == -32700
    client.send(message(id=41, method="textDocument/hover", params=HOVER))
    assert client.reply(41)["result"] is None
    client.send(b"x" * 100_000 + b"\r\n")  # a long line outside any frame
    client.send(b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n")
    client.send(message(id=42, method="textDocument/hover", params=HOVER))
    assert client.reply(42)["result"] is None


def test_after_shutdown_requests_are_refused_and_exit_ends_the_server(client):
    client.send(message(id=50, method="shutdown"))
    assert client.reply(50)["result"] is None
    client.send(message(id=51, method="textDocument/hover", params=HOVER))
    assert client.reply(51)["error"]["code"] == -32600
    client.send(message(method="exit"))
    assert client.process.wait(timeout=TIMEOUT) == 0
