"""The pygls language server: keeps the open `.arch` documents, analyses the newest version of each when
no message is waiting (a burst of keystrokes is one analysis, and an analysis that a newer change makes
stale is dropped), publishes its diagnostics, and answers hover, inlay-hint, code-action, completion and
definition requests from it (a request first brings its document's analysis up to date).

pygls does the protocol (types, capabilities, dispatch); the stream is read by `transport` and the
documents are kept by `documents`, which no client can break and which cost what a change touches.

Settings (from `initializationOptions`, then `workspace/didChangeConfiguration` under `cnn-arch`):
`{"inlayHints": {"shapes": true}}` shows each line's output shape at its end.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import os
import sys
import threading
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.uris import to_fs_path

from archspec import __version__
from archspec.errors import UserError
from archspec.interop import readers
from archspec.lint import Settings
from archspec.lint import config as lint_config
from cnn_arch.server import diagnostics as diag
from cnn_arch.server import features, transport
from cnn_arch.server.analysis import Analysis, DocumentCache, Superseded
from cnn_arch.server.documents import Document
from cnn_arch.server.model_files import ModelFileAnalysis

SECTION = "cnn-arch"
BURST_GAP = 0.02  # s: a burst goes on while changes come closer than this (typing is ~100 ms a key)
PUBLISH_WAIT = 0.002  # s: in a burst, how long an analysis waits for the reader thread before publishing
logger = logging.getLogger(__name__)


class SpecProtocol(LanguageServerProtocol):
    """pygls' protocol, with the open documents kept by the server (`documents.Document`): pygls' own
    store rebuilds the whole text at every change."""

    _server: SpecServer

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        item = params.text_document
        self._server.open(item.uri, item.text, item.version)
        yield from ()

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        self._server.change(params)
        yield from ()

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        self._server.close(params.text_document.uri)
        yield from ()


class SpecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "cnn-arch",
            __version__,
            protocol_cls=SpecProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.documents: dict[str, Document] = {}
        self.analyses: dict[str, Analysis] = {}
        self.caches: dict[str, DocumentCache] = {}  # per document: what an analysis keeps for the next one
        self.dirty: dict[str, None] = {}  # documents changed since their last analysis, in order
        self.shape_hints = True
        self.initialized = False
        self.inbox: collections.deque = collections.deque()
        self.received: collections.Counter = collections.Counter()  # didChanges read, per document (reader thread)
        self.changed_at: dict[str, float] = {}  # when each document's last change was applied (monotonic)
        self.bursting: dict[str, bool] = {}  # whether its last changes came as a burst (see `apply_changes`)
        self.dirty_since: set[str] = set()  # documents changed since their last analysis began
        self.handled: collections.Counter = collections.Counter()  # didChanges applied (main thread)

    def configure(self, options) -> None:
        """Apply client settings: `{"inlayHints": {"shapes": bool}}`, possibly under a `cnn-arch` key."""
        if not isinstance(options, dict):
            return
        options = options.get(SECTION, options)
        hints = options.get("inlayHints") if isinstance(options, dict) else None
        if isinstance(hints, dict) and isinstance(hints.get("shapes"), bool):
            self.shape_hints = hints["shapes"]

    def lint_settings(self, uri: str) -> tuple[Settings, UserError | None]:
        """The `[tool.cnn-arch.lint]` settings of the pyproject.toml nearest the document (read each
        time, so an edited config applies at the next keystroke: finding and reading it takes well under
        a millisecond). A broken config is reported and linting goes on with the default rules."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        folder = Path(path).parent if path else Path(self.workspace.root_path or Path.cwd())
        try:
            found = lint_config.find_config(folder)
            options = lint_config.load_config(found) if found else lint_config.Options()
            return lint_config.settings(options, lint_config.Options()), None
        except UserError as error:
            return Settings.default(), error

    # --- documents ------------------------------------------------------------------------------

    def open(self, uri: str, text: str, version: int | None) -> None:
        self.documents[uri] = Document(uri, text, version)
        self.caches[uri] = DocumentCache()
        self.dirty[uri] = None

    def change(self, params: types.DidChangeTextDocumentParams) -> None:
        changes = []
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                changes.append(((start.line, start.character), (end.line, end.character), change.text))
            else:
                changes.append((None, None, change.text))
        self.apply_changes(params.text_document.uri, params.text_document.version, changes)

    def apply_changes(self, uri: str, version: int, changes: list[tuple]) -> None:
        """Apply a didChange's changes: (start, end, text), positions as (line, character), None for the
        whole text."""
        document = self.documents.get(uri)
        if document is None:
            logger.warning("a change to %s, which is not open, was ignored", uri)
            return
        encoding = self.workspace.position_encoding or "utf-16"
        for start, end, text in changes:
            document.change(start, end, text, encoding)
        document.version = version
        self.dirty[uri] = None
        now = time.monotonic()
        # a burst begins with several changes read between two analyses, and lasts while they keep coming
        # (an editor waiting for each change's diagnostics, or a person typing, sends one at a time)
        recent = now - self.changed_at.get(uri, 0.0) < BURST_GAP
        self.bursting[uri] = uri in self.dirty_since or (recent and self.bursting.get(uri, False))
        self.dirty_since.add(uri)
        self.changed_at[uri] = now

    def close(self, uri: str) -> None:
        for store in (self.documents, self.analyses, self.caches, self.dirty, self.changed_at, self.bursting):
            store.pop(uri, None)
        self.dirty_since.discard(uri)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # --- analysis -------------------------------------------------------------------------------

    def superseded(self, uri: str) -> bool:
        """Whether a change to `uri` has been read that is not applied yet."""
        return self.received[uri] > self.handled[uri]

    def analyse(self, uri: str, cancellable: bool) -> Analysis | None:
        """Analyse the document's current text (raising `Superseded` when `cancellable` and a newer version
        arrives meanwhile) and publish its diagnostics unless a newer version is waiting."""
        document = self.documents[uri]
        settings, config_error = self.lint_settings(uri)
        path = to_fs_path(uri) if uri.startswith("file:") else None
        name = Path(path).name if path else uri

        def check() -> None:
            if cancellable and self.superseded(uri):
                raise Superseded

        if readers.reader_for(name):  # Keras code, a saved model or ONNX: checked as `cnn-arch lint` checks it
            analysis = ModelFileAnalysis(document.text, name, path, settings)
        else:
            analysis = Analysis(document.text, name, settings, self.analyses.get(uri), self.caches.get(uri), check)
        self.analyses[uri] = analysis
        self.dirty.pop(uri, None)
        self.dirty_since.discard(uri)
        if cancellable and self.bursting.get(uri) and not self.superseded(uri):
            # Changes are coming faster than they are analysed: the next may be in the pipe, read as soon as
            # the reader thread runs (the interpreter lock, the machine's load): let it, before publishing
            # a version that may already be stale.
            time.sleep(PUBLISH_WAIT)
        if not self.superseded(uri):
            found = diag.diagnostics(analysis, uri, self.workspace.position_codec, config_error)
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=document.version)
            )
        # What the analysis keeps (a 10,000-line document's nodes, infos, syntax) lives long: leave it out
        # of the collections to come, once the cycles it made are collected (young, they are cheap to find:
        # a few ms). A full collection of a document's objects took 35 ms in the middle of a keystroke.
        gc.collect(2 if gc.get_count()[2] else 1)
        gc.freeze()
        return analysis

    def analysis(self, uri: str) -> Analysis | None:
        """The analysis of the document's current text, for a request (brought up to date first)."""
        if uri not in self.documents:
            return None
        if uri in self.dirty or uri not in self.analyses:
            return self.analyse(uri, cancellable=False)
        return self.analyses[uri]

    def analyse_waiting(self) -> None:
        """Analyse the changed documents, newest first in line, while no message is waiting."""
        for uri in list(self.dirty):
            if self.inbox:
                return  # read what came first; this document is analysed after
            with contextlib.suppress(Superseded):  # dropped: the newer version is analysed next
                self.analyse(uri, cancellable=True)

    # --- the stream -----------------------------------------------------------------------------

    def start_io(self, stdin=None, stdout=None) -> None:
        """Serve over stdin/stdout until the client says exit or the stream ends."""
        from pygls.io_ import StdoutWriter

        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        # What is alive now (the imports) is never garbage: leave it out of every collection, and collect
        # less often. An analysis of a 10,000-line spec allocates a few hundred thousand objects, almost
        # all freed by reference counting, and a full collection of a grown heap took 100 ms mid-keystroke.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        # The reader thread waits for the interpreter lock while an analysis runs: it gets it this soon,
        # so a change that arrives during an analysis is read (and makes it stale) before the analysis
        # publishes (an analysis of a 10,000-line spec takes a few ms now: within the 5 ms default, a
        # version already superseded by a change in the pipe was published).
        sys.setswitchinterval(0.0005)
        wake = threading.Event()
        reader = transport.Reader(stdin or sys.stdin.buffer, self.inbox, wake.set, self.received.update)
        reader.start()
        try:
            while True:
                wake.wait()
                wake.clear()
                while self.inbox:
                    item = self.inbox.popleft()
                    if item is transport.END:
                        return
                    self.receive(item)
                self.analyse_waiting()
        except SystemExit as stop:  # `exit`: pygls has closed stdout and exits with 0, or 1 without `shutdown`
            # Ended here, not by unwinding: the reader thread is blocked reading stdin, and an interpreter
            # finalizing with it there aborts.
            os._exit(stop.code if isinstance(stop.code, int) else 1)

    def receive(self, item) -> None:
        """Dispatch one message read from the stream; answer every request that cannot be dispatched."""
        if isinstance(item, transport.Fault):
            self.respond_error(item.id, item.code, item.message)
            if item.tell_user:
                self.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"cnn-arch: {item.message}"))
            return
        if not isinstance(item, dict) or item.get("jsonrpc") != "2.0":
            self.respond_error(_id_of(item), transport.INVALID_REQUEST, "not a JSON-RPC 2.0 message")
            return
        method = item.get("method")
        request = "id" in item and method is not None
        if request and _id_of(item) is None:
            self.respond_error(None, transport.INVALID_REQUEST, "a request's id must be a number or a string")
            return
        if method is not None and not isinstance(method, str):
            self.respond_error(_id_of(item), transport.INVALID_REQUEST, "`method` must be a string")
            return
        if method == types.TEXT_DOCUMENT_DID_CHANGE and transport.uri_of(item) is not None:
            self.handled[transport.uri_of(item)] += 1  # read now: applied below, or refused
        if method is not None and not self.initialized and method not in (types.INITIALIZE, types.EXIT):
            if request:
                self.respond_error(item["id"], transport.SERVER_NOT_INITIALIZED, "the server is not initialized yet")
            return
        if method is not None and self.protocol._shutdown and method != types.EXIT:
            if request:
                self.respond_error(item["id"], transport.INVALID_REQUEST, "the server is shutting down")
            return
        if method == types.TEXT_DOCUMENT_DID_CHANGE and not request:
            changed = transport.did_change(item)
            if changed is not None:  # the keystrokes of a burst, without pygls' dispatch (30 µs each)
                self.apply_changes(*changed)
                return
        try:
            message = self._structure(item)
        except Exception as error:
            if request:
                self.respond_error(item["id"], transport.INVALID_PARAMS, f"invalid params for {method}: {_why(error)}")
            else:
                logger.warning("ignored %s with invalid params: %s", method or "a response", _why(error))
            return
        if method == types.INITIALIZE:
            self.initialized = True
        self.protocol.handle_message(message)

    def _structure(self, data: dict):
        """The lsprotocol object of a message, as pygls' reader would build it (without its logging)."""
        from lsprotocol.types import ResponseErrorMessage
        from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage

        protocol = self.protocol
        if "method" in data:
            fallback = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
            kind = protocol.get_message_type(data["method"]) or fallback
        elif "error" in data:
            kind = ResponseErrorMessage
        else:
            kind = protocol._result_types.pop(data.get("id"), None) or JsonRPCResponseMessage
        return protocol._converter.structure(data, kind)

    def respond_error(self, id, code: int, message: str) -> None:
        self.protocol._send_data({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})


def _id_of(item) -> int | str | None:
    id = item.get("id") if isinstance(item, dict) else None
    return id if isinstance(id, (int, str)) and not isinstance(id, bool) else None


def _why(error: Exception) -> str:
    from cattrs import transform_error
    from cattrs.errors import ClassValidationError

    if isinstance(error, ClassValidationError):
        return "; ".join(transform_error(error))
    return str(error) or type(error).__name__


server = SpecServer()


@server.feature(types.INITIALIZE)
def _initialize(ls: SpecServer, params: types.InitializeParams) -> None:
    ls.configure(params.initialization_options)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def _did_change_configuration(ls: SpecServer, params: types.DidChangeConfigurationParams) -> None:
    ls.configure(params.settings)
    workspace = ls.client_capabilities.workspace
    if workspace and workspace.inlay_hint and workspace.inlay_hint.refresh_support:
        ls.workspace_inlay_hint_refresh(None)


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def _did_change_watched_files(ls: SpecServer, params: types.DidChangeWatchedFilesParams) -> None:
    for uri in ls.documents:  # a pyproject.toml changed: its lint settings may have
        ls.dirty[uri] = None


@server.feature(types.TEXT_DOCUMENT_HOVER)
def _hover(ls: SpecServer, params: types.HoverParams) -> types.Hover | None:
    analysis = ls.analysis(params.text_document.uri)
    return features.hover(analysis, ls.workspace.position_codec, params.position) if analysis else None


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
def _inlay_hints(ls: SpecServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None or not ls.shape_hints:
        return []
    return features.inlay_hints(analysis, ls.workspace.position_codec, params.range)


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix])
)
def _code_actions(ls: SpecServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None:
        return []
    return diag.code_actions(analysis, params.text_document.uri, ls.workspace.position_codec, params.range)


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[" "]))
def _completion(ls: SpecServer, params: types.CompletionParams) -> types.CompletionList:
    analysis = ls.analysis(params.text_document.uri)
    items = features.completion(analysis, ls.workspace.position_codec, params.position) if analysis else []
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def _definition(ls: SpecServer, params: types.DefinitionParams) -> types.Location | None:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None:
        return None
    return features.definition(analysis, ls.workspace.position_codec, params.text_document.uri, params.position)


def start() -> None:
    """Serve over stdin/stdout until the client says exit."""
    server.start_io()
