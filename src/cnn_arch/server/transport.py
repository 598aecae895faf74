"""The server's side of the stdio stream, in place of pygls' reader, so that no client can break it.

pygls 2 reads a header line, then `read(Content-Length)` bytes, and hands the body to `json.loads`
with its structuring hook: a huge Content-Length allocates it (MemoryError kills the server), a short
one leaves the rest of the body to be read as headers, after which no header ever matches again, and a
body that is not JSON, or a request whose params do not fit its method, is logged and dropped without
a response, so the client waits forever. Here:

- header lines are read with bounded memory; a `Content-Length:` is found at the end of any line, so
  after a framing error the next message's header is found again (the rest of a bad body ends where
  the next header starts);
- a Content-Length over `MAX_CONTENT_LENGTH` is refused (`-32600`, and a message the user sees); its
  body is skipped as unframed bytes;
- a body that is not JSON gets `-32700`, one that is not a JSON-RPC message `-32600`;
- the reading runs on a thread of its own, so the main thread, which analyses, sees every message
  that arrived meanwhile at once, and can leave a document version that is already superseded.
"""

from __future__ import annotations

import collections
import json
import re
import threading

MAX_CONTENT_LENGTH = 16 * 1024 * 1024  # bytes: a 1,000,000-character spec in JSON, escaped, fits 6 times over
MAX_HEADER_LINE = 1024  # bytes of a header line that are kept; a longer line is junk, skipped in pieces

_CONTENT_LENGTH = re.compile(rb"Content-Length:[ \t]*(\d{1,20})[ \t]*\r?\n\Z", re.IGNORECASE)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002


class Fault:
    """A message that could not be read: the error response to send (`id` None unless it was found)."""

    def __init__(self, code: int, message: str, id=None, tell_user: bool = False) -> None:
        self.code = code
        self.message = message
        self.id = id
        self.tell_user = tell_user


END = object()  # the stream ended


class Reader(threading.Thread):
    """Reads framed messages from a binary stream and puts each (a dict, a list or a `Fault`) in `inbox`,
    calling `wake()` after each, and `on_change([uri])` for each `didChange` as it is read, before it is
    handled: an analysis of that document can see that it is superseded."""

    def __init__(self, stream, inbox: collections.deque, wake, on_change) -> None:
        super().__init__(name="lsp-reader", daemon=True)
        self.stream = stream
        self.inbox = inbox
        self.wake = wake
        self.on_change = on_change

    def run(self) -> None:
        try:
            self._read()
        finally:
            self.inbox.append(END)
            self.wake()

    def _read(self) -> None:
        length: int | None = None
        while True:
            line = self._line()
            if line is None:
                return
            found = _CONTENT_LENGTH.search(line)
            if found:
                length = int(found.group(1))
                continue
            if line.strip() or length is None:
                continue  # another header (Content-Type), or bytes outside any frame
            if length > MAX_CONTENT_LENGTH:
                self._put(
                    Fault(
                        INVALID_REQUEST,
                        f"a message of {length:,} bytes is over the server's limit of {MAX_CONTENT_LENGTH:,} bytes; "
                        "it was skipped",
                        tell_user=True,
                    )
                )
                length = None  # its bytes are read as lines outside any frame, up to the next header
                continue
            body = self.stream.read(length)
            length = None
            if body is None or len(body) == 0:
                return
            self._put(_decode(body))

    def _line(self) -> bytes | None:
        """The next line, ending in `\\n`: its last MAX_HEADER_LINE bytes (a header is at its end). None at
        the end of the stream."""
        kept = b""
        while True:
            piece = self.stream.readline(MAX_HEADER_LINE)
            if not piece:
                return kept or None
            kept = (kept + piece)[-MAX_HEADER_LINE:]
            if piece.endswith(b"\n"):
                return kept

    def _put(self, item) -> None:
        if isinstance(item, dict) and item.get("method") == "textDocument/didChange":
            uri = uri_of(item)
            if uri is not None:
                self.on_change((uri,))
        self.inbox.append(item)
        self.wake()


def did_change(message: dict) -> tuple[str, int, list[tuple]] | None:
    """A didChange notification's (uri, version, changes), each change (start, end, text) with positions
    as (line, character) or None for the whole text; None when the message is not exactly that shape
    (then pygls reads it, and reports what is wrong)."""
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    document, changes = params.get("textDocument"), params.get("contentChanges")
    if not isinstance(document, dict) or not isinstance(changes, list):
        return None
    uri, version = document.get("uri"), document.get("version")
    if not isinstance(uri, str) or type(version) is not int:
        return None
    found = []
    for change in changes:
        if not isinstance(change, dict) or not isinstance(change.get("text"), str):
            return None
        if "range" not in change:
            found.append((None, None, change["text"]))
            continue
        where = change["range"]
        positions = [where.get(key) if isinstance(where, dict) else None for key in ("start", "end")]
        points = [_point(position) for position in positions]
        if None in points:
            return None
        found.append((*points, change["text"]))
    return uri, version, found


def _point(position) -> tuple[int, int] | None:
    if not isinstance(position, dict):
        return None
    line, character = position.get("line"), position.get("character")
    if type(line) is not int or type(character) is not int or line < 0 or character < 0:
        return None
    return line, character


def uri_of(message: dict) -> str | None:
    params = message.get("params")
    document = params.get("textDocument") if isinstance(params, dict) else None
    uri = document.get("uri") if isinstance(document, dict) else None
    return uri if isinstance(uri, str) else None


def _decode(body: bytes):
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return Fault(PARSE_ERROR, f"the message is not JSON: {error}")
    except RecursionError:
        return Fault(PARSE_ERROR, "the message is nested too deeply")
