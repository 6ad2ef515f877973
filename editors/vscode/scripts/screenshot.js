#!/usr/bin/env node
// Renders specs/simple-safety-tests.assay with this extension's TextMate grammar (through
// shiki, which runs the same vscode-textmate engine) into editors/screenshot.html.
//
// To rerun, from editors/vscode:
//   npm ci && npm run screenshot
//   chromium --headless --no-sandbox --hide-scrollbars --window-size=1200,1400 \
//     --screenshot=../screenshot.png "file://$PWD/../screenshot.html"
// (`apt-get install -y chromium` on Debian; --no-sandbox only when running as root.)
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SPEC = 'specs/simple-safety-tests.assay';
const OUT = path.join(ROOT, 'editors', 'screenshot.html');
const THEME = 'dark-plus';

const escape = (text) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// One source line as HTML: its number, then one span per token in the theme's colours.
function renderLine(tokens, number) {
  const spans = tokens
    .map((t) => {
      const style = [`color:${t.color}`];
      if (t.fontStyle & 1) style.push('font-style:italic');
      if (t.fontStyle & 2) style.push('font-weight:bold');
      return `<span style="${style.join(';')}">${escape(t.content)}</span>`;
    })
    .join('');
  return `<div class="line"><span class="n">${number}</span><span class="code">${spans}</span></div>`;
}

async function main() {
  const { createHighlighter } = await import('shiki');
  const grammar = JSON.parse(
    fs.readFileSync(path.join(__dirname, '..', 'syntaxes', 'assay.tmLanguage.json'), 'utf8'),
  );
  const highlighter = await createHighlighter({
    themes: [THEME],
    langs: [{ ...grammar, name: 'assay' }],
  });
  const code = fs.readFileSync(path.join(ROOT, SPEC), 'utf8').replace(/\n$/, '');
  // Tokenized in one pass, so a column break never resets the grammar's state.
  const { tokens, bg, fg } = highlighter.codeToTokens(code, { lang: 'assay', theme: THEME });
  // Two columns, so the whole file fits a 1200x1400 window: break at the first blank line
  // past the middle.
  const lines = code.split('\n');
  let split = Math.ceil(lines.length / 2);
  while (split < lines.length && lines[split].trim() !== '') split++;
  const column = (from, to) =>
    `<div class="column">${tokens.slice(from, to).map((t, i) => renderLine(t, from + i + 1)).join('\n')}</div>`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${SPEC} — Assay TextMate grammar</title>
<style>
  html, body { margin: 0; background: ${bg}; color: ${fg}; }
  body { padding: 16px 18px; }
  .file { font: 13px/1.4 "DejaVu Sans", sans-serif; color: #9d9d9d; margin: 0 0 10px 4px; }
  .columns { display: flex; gap: 18px; }
  .column { flex: 1 1 0; min-width: 0; font: 13px/1.5 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
  .line { display: flex; }
  .n { flex: none; width: 2.6em; padding-right: 0.9em; text-align: right; color: #6e7681; user-select: none; }
  .code { flex: 1 1 0; min-width: 0; white-space: pre-wrap; overflow-wrap: anywhere;
          padding-left: 2ch; text-indent: -2ch; }
</style>
</head>
<body>
<div class="file">${SPEC} · highlighted by editors/vscode/syntaxes/assay.tmLanguage.json (source.assay) · theme ${THEME}</div>
<div class="columns">
${column(0, split)}
${column(lines[split] === '' ? split + 1 : split, lines.length)}
</div>
</body>
</html>
`;
  fs.writeFileSync(OUT, html);
  console.log(`wrote ${path.relative(process.cwd(), OUT)}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
