"""The pygls language server: keeps one analysis per open `.arch` document, re-checks it on every
change and publishes its diagnostics, and answers hover, inlay-hint, code-action, completion and
definition requests from it.

Settings (from `initializationOptions`, then `workspace/didChangeConfiguration` under `cnn-arch`):
`{"inlayHints": {"shapes": true}}` shows each line's output shape at its end.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from archspec import __version__
from archspec.errors import UserError
from archspec.interop import readers
from archspec.lint import Settings
from archspec.lint import config as lint_config
from cnn_arch.server import diagnostics as diag
from cnn_arch.server import features
from cnn_arch.server.analysis import Analysis
from cnn_arch.server.model_files import ModelFileAnalysis

SECTION = "cnn-arch"


class SpecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("cnn-arch", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.analyses: dict[str, Analysis] = {}
        self.shape_hints = True

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

    def check(self, uri: str) -> None:
        """Re-analyze a document and publish its diagnostics."""
        document = self.workspace.get_text_document(uri)
        settings, config_error = self.lint_settings(uri)
        path = to_fs_path(uri) if uri.startswith("file:") else None
        name = Path(path).name if path else uri
        if readers.reader_for(name):  # Keras code or a saved model: checked as `cnn-arch lint` checks it
            analysis = ModelFileAnalysis(document.source, name, path, settings)
        else:
            analysis = Analysis(document.source, name, settings, self.analyses.get(uri))
        self.analyses[uri] = analysis
        found = diag.diagnostics(analysis, uri, self.workspace.position_codec, config_error)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=document.version)
        )

    def analysis(self, uri: str) -> Analysis | None:
        return self.analyses.get(uri)


server = SpecServer()


@server.feature(types.INITIALIZE)
def _initialize(ls: SpecServer, params: types.InitializeParams) -> None:
    ls.configure(params.initialization_options)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: SpecServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.check(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def _did_change(ls: SpecServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.check(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: SpecServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.analyses.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def _did_change_configuration(ls: SpecServer, params: types.DidChangeConfigurationParams) -> None:
    ls.configure(params.settings)
    workspace = ls.client_capabilities.workspace
    if workspace and workspace.inlay_hint and workspace.inlay_hint.refresh_support:
        ls.workspace_inlay_hint_refresh(None)


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def _did_change_watched_files(ls: SpecServer, params: types.DidChangeWatchedFilesParams) -> None:
    for uri in list(ls.analyses):  # a pyproject.toml changed: its lint settings may have
        ls.check(uri)


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
