#!/usr/bin/env node
// Checks that the pest grammar (the authoritative one, through an `assay` binary) agrees with
// the corpus: every case in test/corpus/*.txt parses with no syntax error (E0001, E0002,
// E0003), except the cases marked `:error`, which must have one. Other diagnostics (unknown
// names, missing keys) are the checker's business and are ignored.
//
//   node test/pest-agreement.js path/to/assay
//
// Exit status 1 when a case disagrees; each disagreement is printed with the case's name.
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SYNTAX_CODES = new Set(['E0001', 'E0002', 'E0003']);

const assay = process.argv[2];
if (!assay) {
  console.error('usage: pest-agreement.js ASSAY_BINARY');
  process.exit(2);
}

const corpusDir = path.join(__dirname, 'corpus');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'assay-pest-agreement-'));

// Splits a corpus file into cases: a name (and attributes) between two `===` lines, then the
// input up to a `---` line.
function cases(text) {
  const found = [];
  const header = /^={3,}\n([\s\S]*?)\n={3,}\n([\s\S]*?)\n-{3,}\n/gm;
  let m;
  while ((m = header.exec(text)) !== null) {
    const lines = m[1].split('\n');
    found.push({
      name: lines[0],
      error: lines.slice(1).some((l) => l.trim() === ':error'),
      input: m[2].replace(/^\n/, '').replace(/\n$/, ''),
    });
  }
  return found;
}

function syntaxErrors(file) {
  let out;
  try {
    out = execFileSync(assay, ['check', '--format', 'json', file], { encoding: 'utf8' });
  } catch (e) {
    // `assay check` exits non-zero when it reports errors; its stdout still has them.
    if (typeof e.stdout !== 'string') throw e;
    out = e.stdout;
  }
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l))
    .filter((d) => SYNTAX_CODES.has(d.code))
    .map((d) => `${d.code} ${d.line}:${d.column} ${d.message}`);
}

let checked = 0;
const disagreements = [];
for (const corpus of fs.readdirSync(corpusDir).filter((f) => f.endsWith('.txt')).sort()) {
  for (const c of cases(fs.readFileSync(path.join(corpusDir, corpus), 'utf8'))) {
    const file = path.join(work, `case-${checked}.assay`);
    fs.writeFileSync(file, `${c.input}\n`);
    const errors = syntaxErrors(file);
    checked += 1;
    if (c.error && errors.length === 0) {
      disagreements.push(`${corpus}: "${c.name}": pest accepts it, the corpus expects an error`);
    } else if (!c.error && errors.length > 0) {
      disagreements.push(`${corpus}: "${c.name}": pest rejects it: ${errors.join('; ')}`);
    }
  }
}
fs.rmSync(work, { recursive: true, force: true });

for (const d of disagreements) console.error(d);
console.log(`pest-agreement: ${checked} corpus cases, ${disagreements.length} disagreements`);
process.exit(disagreements.length === 0 ? 0 : 1);
