#!/usr/bin/env node
// Tokenizes every shipped spec (specs/*.assay) and standard-library module
// (stdlib/**/*.assay) with the grammar and fails when
//   * a token gets an `invalid.*` scope: these files are valid Assay, so every such token is
//     a grammar bug;
//   * a line that starts at column 0 with a declaration keyword (the column-0 rule of
//     GRAMMAR.md) does not get that keyword scoped as `keyword.*`, or a declaration that
//     defines a name does not get the name scoped as `entity.name.*`.
// Extra files or folders may be given as arguments (then only those are checked).
'use strict';

const fs = require('fs');
const path = require('path');
const { loadGrammar, tokenizeText } = require('./grammar');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DECL = /^(suite|use|taxonomy|mapping|persona|template|dataset|axis|target|program|judge|metric|grade|standard|report)(?![A-Za-z0-9_])[ \t]*([A-Za-z_][A-Za-z0-9_]*)?/;
// Declarations whose second word is the name they define (`report` may have none).
const NAMED = new Set(['taxonomy', 'mapping', 'persona', 'template', 'dataset', 'axis', 'target',
  'program', 'judge', 'metric', 'grade', 'standard', 'report']);

function assayFiles(dir, recursive) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return recursive ? assayFiles(full, true) : [];
    return entry.name.endsWith('.assay') ? [full] : [];
  }).sort();
}

function checkFile(grammar, file) {
  const problems = [];
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split(/\r?\n/);
  const where = (i, col) => `${path.relative(ROOT, file)}:${i + 1}:${col + 1}`;
  tokenizeText(grammar, text).forEach((tokens, i) => {
    for (const t of tokens) {
      const bad = t.scopes.find((s) => s.startsWith('invalid'));
      if (bad && t.text !== '') problems.push(`${where(i, t.start)}: ${JSON.stringify(t.text)} is scoped ${bad}`);
    }
    const decl = DECL.exec(lines[i]);
    if (!decl) return;
    const [, keyword, name] = decl;
    const first = tokens.find((t) => t.start === 0);
    const kwScope = first && first.end >= keyword.length && first.scopes.find((s) => s.startsWith('keyword.'));
    if (!kwScope) {
      problems.push(`${where(i, 0)}: declaration keyword \`${keyword}\` is not scoped as a keyword (${first ? first.scopes.join(' ') : 'no token'})`);
    }
    if (name && NAMED.has(keyword)) {
      const col = lines[i].indexOf(name, keyword.length);
      const token = tokens.find((t) => t.start <= col && col < t.end);
      if (!token || !token.scopes.some((s) => s.startsWith('entity.name.'))) {
        problems.push(`${where(i, col)}: the name \`${name}\` of \`${keyword}\` is not scoped as entity.name.* (${token ? token.scopes.join(' ') : 'no token'})`);
      }
    }
  });
  return problems;
}

async function main() {
  const args = process.argv.slice(2);
  const files = args.length
    ? args.flatMap((a) => (fs.statSync(a).isDirectory() ? assayFiles(path.resolve(a), true) : [path.resolve(a)]))
    : [...assayFiles(path.join(ROOT, 'specs'), false), ...assayFiles(path.join(ROOT, 'stdlib'), true)];
  if (files.length === 0) {
    console.error('no-invalid: no .assay files found');
    process.exit(1);
  }
  const grammar = await loadGrammar();
  let failed = 0;
  for (const file of files) {
    const problems = checkFile(grammar, file);
    if (problems.length) {
      failed++;
      console.log(`FAIL ${path.relative(ROOT, file)}`);
      for (const p of problems) console.log(`  ${p}`);
    } else {
      console.log(`ok   ${path.relative(ROOT, file)}`);
    }
  }
  console.log(`no-invalid: ${files.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
