// The Assay extension: the TextMate grammar (see package.json) gives highlighting; this file
// starts `assay lsp` as the language server when an `assay` binary can be found. Without one
// it says so once and leaves highlighting as the only feature.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const vscode = require('vscode');

const DONT_ASK_KEY = 'assay.missingBinary.dontShowAgain';
let client;
let warnedThisSession = false;

// The configured `assay.path`, or `assay` looked up on PATH. Returns null when not found.
function findAssay() {
  const configured = vscode.workspace.getConfiguration('assay').get('path', '').trim();
  const name = configured || 'assay';
  const extensions = process.platform === 'win32'
    ? ['', ...(process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';')]
    : [''];
  const isFile = (file) => {
    try {
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/') || name.includes('\\')) {
    const file = path.resolve(name.replace(/^~(?=$|[\\/])/, os.homedir()));
    return extensions.map((ext) => file + ext).find(isFile) || null;
  }
  for (const dir of (process.env.PATH || '').split(path.delimiter).filter(Boolean)) {
    const found = extensions.map((ext) => path.join(dir, name + ext)).find(isFile);
    if (found) return found;
  }
  return null;
}

async function startClient(context) {
  const command = findAssay();
  if (!command) {
    if (!warnedThisSession && !context.globalState.get(DONT_ASK_KEY)) {
      warnedThisSession = true;
      // Not awaited: activation must not wait for the user to dismiss the message.
      vscode.window
        .showWarningMessage(
          'Assay: no `assay` binary found (set `assay.path` or put it on PATH). ' +
            'Highlighting works; diagnostics and other language features need `assay lsp`.',
          "Don't show again",
        )
        .then((choice) => {
          if (choice === "Don't show again") context.globalState.update(DONT_ASK_KEY, true);
        });
    }
    return;
  }
  let languageclient;
  try {
    languageclient = require('vscode-languageclient/node');
  } catch {
    vscode.window.showWarningMessage(
      'Assay: `vscode-languageclient` is not installed; run `npm install` in the extension folder.',
    );
    return;
  }
  const server = { command, args: ['lsp'], transport: languageclient.TransportKind.stdio };
  client = new languageclient.LanguageClient(
    'assay',
    'Assay',
    { run: server, debug: server },
    {
      documentSelector: [
        { scheme: 'file', language: 'assay' },
        { scheme: 'untitled', language: 'assay' },
      ],
    },
  );
  await client.start();
}

async function stopClient() {
  if (!client) return;
  const running = client;
  client = undefined;
  await running.stop();
}

function activate(context) {
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration('assay.path')) return;
      await stopClient();
      await startClient(context);
    }),
    { dispose: () => void stopClient() },
  );
  return startClient(context).catch((error) =>
    vscode.window.showErrorMessage(`Assay: the language server did not start: ${error.message}`),
  );
}

function deactivate() {
  return stopClient();
}

module.exports = { activate, deactivate };
