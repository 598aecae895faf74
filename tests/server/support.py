"""Driving `cnn-arch server` as an editor does: open and change documents, wait for their diagnostics,
apply the text edits the server sends back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

TIMEOUT = 60  # seconds for any one reply: generous, the test machine may be busy


class Editor:
    """The documents one test has open, with their versions and text as the editor holds them."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.versions: dict[str, int] = {}
        self.texts: dict[str, str] = {}

    async def _published(self, uri: str, send) -> list[types.Diagnostic]:
        """Send a change and wait for the diagnostics the server publishes for it. Every change waits for
        its own, so the first to arrive for `uri` after sending is the one."""
        self.client.diagnostics.pop(uri, None)
        send()
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while uri not in self.client.diagnostics:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no diagnostics for {uri} within {TIMEOUT} s")
            await asyncio.sleep(0.005)
        return list(self.client.diagnostics[uri])

    async def open(self, path: Path, text: str) -> tuple[str, list[types.Diagnostic]]:
        uri = path.as_uri()
        self.versions[uri] = 1
        self.texts[uri] = text
        item = types.TextDocumentItem(uri=uri, language_id="cnn-arch", version=1, text=text)
        send = lambda: self.client.text_document_did_open(types.DidOpenTextDocumentParams(item))  # noqa: E731
        return uri, await self._published(uri, send)

    async def replace(self, uri: str, text: str) -> list[types.Diagnostic]:
        """Send the whole new text, as an incremental change over the whole document."""
        old = self.texts[uri].split("\n")
        whole = types.Range(types.Position(0, 0), types.Position(len(old) - 1, len(old[-1])))
        return await self._change(uri, [types.TextDocumentContentChangePartial(range=whole, text=text)], text)

    async def edit(self, uri: str, edits: list[types.TextEdit]) -> list[types.Diagnostic]:
        """Apply the server's edits here and send them as incremental changes, last first."""
        text = apply(self.texts[uri], edits)
        ordered = sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True)
        changes = [types.TextDocumentContentChangePartial(range=e.range, text=e.new_text) for e in ordered]
        return await self._change(uri, changes, text)

    async def _change(self, uri: str, changes, text: str) -> list[types.Diagnostic]:
        self.versions[uri] += 1
        self.texts[uri] = text
        version = self.versions[uri]
        params = types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=uri), changes
        )
        return await self._published(uri, lambda: self.client.text_document_did_change(params))

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))

    async def request(self, coroutine):
        return await asyncio.wait_for(coroutine, TIMEOUT)


def apply(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP text edits (ASCII text: UTF-16 units are characters) to a text."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(position: types.Position) -> int:
        return starts[position.line] + position.character

    for e in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[: offset(e.range.start)] + e.new_text + text[offset(e.range.end) :]
    return text


def at(line: int, character: int) -> types.Position:
    """A position from the 1-based line numbers the spec's messages use."""
    return types.Position(line - 1, character)


def doc(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri)
