// The cnn-arch extension: starts `cnn-arch server` over stdio for .arch files and passes the
// `cnn-arch.*` settings to it (at start-up as initializationOptions, on change as
// workspace/didChangeConfiguration). The server does all the work; see docs/editors.md.
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function serverSettings() {
  const config = vscode.workspace.getConfiguration("cnn-arch");
  return { inlayHints: { shapes: config.get("inlayHints.shapes", true) } };
}

async function activate(context) {
  const command = vscode.workspace.getConfiguration("cnn-arch").get("path", "cnn-arch");
  const serverOptions = { command, args: ["server"] };
  const clientOptions = {
    documentSelector: [{ language: "cnn-arch" }],
    initializationOptions: serverSettings(),
    synchronize: {
      // Sends {"cnn-arch": {...}} on every change of these settings.
      configurationSection: "cnn-arch",
      // [tool.cnn-arch.lint] lives in pyproject.toml: re-check open specs when one changes.
      fileEvents: vscode.workspace.createFileSystemWatcher("**/pyproject.toml"),
    },
  };
  client = new LanguageClient("cnn-arch", "cnn-arch", serverOptions, clientOptions);
  await client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
