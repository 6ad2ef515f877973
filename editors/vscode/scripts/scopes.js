#!/usr/bin/env node
// Prints each token of an Assay file with its scopes: the tool for writing grammar-test
// assertions. Usage: node scripts/scopes.js FILE [FIRST_LINE [LAST_LINE]]
'use strict';

const fs = require('fs');
const { loadGrammar, tokenizeText } = require('../test/grammar');

async function main() {
  const [file, first = '1', last] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node scripts/scopes.js FILE [FIRST_LINE [LAST_LINE]]');
    process.exit(2);
  }
  const grammar = await loadGrammar();
  const lines = tokenizeText(grammar, fs.readFileSync(file, 'utf8'));
  const from = Number(first);
  const to = last ? Number(last) : lines.length;
  for (let i = from - 1; i < Math.min(to, lines.length); i++) {
    for (const t of lines[i]) {
      if (t.text.trim() === '') continue;
      const scopes = t.scopes.slice(1).filter((s) => !s.startsWith('meta.'));
      console.log(`${i + 1}:${t.start + 1}\t${JSON.stringify(t.text)}\t${scopes.join(' ')}`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
