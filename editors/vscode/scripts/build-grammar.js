#!/usr/bin/env node
// Builds syntaxes/assay.tmLanguage.json, the TextMate grammar of Assay.
//
// The grammar is written here rather than as raw JSON so that each regular expression is
// spelled once, readably (String.raw, no double escaping), and so that the word lists come
// from one place. The lists follow crates/assay-syntax/src/assay.pest and GRAMMAR.md; keep
// them in step with those.
//
//   node scripts/build-grammar.js          write syntaxes/assay.tmLanguage.json
//   node scripts/build-grammar.js --check  fail if the committed JSON is out of date
//
// How the grammar is laid out:
//
// * Every top-level declaration is one region, `meta.declaration.<keyword>.assay`, that
//   starts at its keyword and ends after its `{ ... }` body, or before the next line that
//   starts at column 0 with a declaration keyword. That is the language's own recovery rule
//   (GRAMMAR.md, "The column-0 rule"), so an unclosed brace while typing spoils at most one
//   declaration. Every bracket region inside ends the same way.
// * Inside a body, each declaration has its own pattern list: category codes only inside a
//   taxonomy, column types only inside `columns`, `band` only inside a grade, and so on.
// * Keywords are contextual in Assay: `persona = x`, `seed = 7` or `attacker = malicious`
//   are properties. The property pattern is therefore listed before any keyword in a body,
//   and TextMate picks the earlier pattern when two match at the same column.
'use strict';

const fs = require('fs');
const path = require('path');

const OUT = path.join(__dirname, '..', 'syntaxes', 'assay.tmLanguage.json');

// ---------------------------------------------------------------------------------------
// Word lists
// ---------------------------------------------------------------------------------------

// pest `top_keyword`: the words that start a declaration.
const DECL_KEYWORDS = [
  'suite', 'use', 'taxonomy', 'mapping', 'persona', 'template', 'dataset', 'axis',
  'target', 'program', 'judge', 'metric', 'grade', 'standard', 'report',
];
// `judge NAME: KIND` and `axis NAME: KIND` (GRAMMAR.md section 3).
const JUDGE_KINDS = ['llm', 'keywords', 'regex', 'choice', 'guard', 'score', 'ensemble', 'human'];
const AXIS_KINDS = ['system', 'transform', 'locale', 'persona', 'program', 'defense'];
const COLUMN_TYPES = ['string', 'int', 'float', 'bool', 'list', 'record'];
const CHART_KINDS = ['bar', 'line', 'heatmap', 'scatter'];
const GENERATORS = ['product', 'zip'];
const BAND_SUBJECTS = ['value', 'ratio', 'lower', 'upper'];
// Functions of metrics, filters, file references and transforms, and the named preprocessing
// steps and parsers of judges (assay-check: FUNCTIONS, TRANSFORMS, PREPROCESS_STEPS, PARSERS).
const BUILTIN_CALLS = [
  'rate', 'count', 'mean', 'median', 'sum', 'std', 'consistency', 'weighted_rate',
  'accuracy', 'precision', 'recall', 'f1', 'kappa', 'harmonic_mean', 'min', 'max', 'clamp',
  'exp', 'log', 'abs', 'sqrt', 'len', 'lower', 'upper', 'contains', 'file', 'leaves',
  'answer', 'wrap', 'translate', 'extract', 'extract_llm', 'not_applicable', 'json', 'regex',
];
const TRANSFORMS = ['identity', 'base64', 'rot13', 'leetspeak', 'spacing', 'reverse', 'uppercase'];
const JUDGE_STEPS = ['strip_reasoning', 'lowercase', 'first_word'];
// Keys that take one word from a fixed list (GRAMMAR.md section 3, E0008).
const ENUM_KEYS = {
  provider: ['openai', 'anthropic', 'ollama', 'openai_compatible', 'huggingface', 'vllm', 'mock'],
  format: ['csv', 'jsonl', 'json', 'yaml', 'parquet', 'llama_guard'],
  ci: ['wilson', 'clopper_pearson', 'bootstrap', 'none'],
  pooling: ['items', 'groups'],
  overall: ['pooled', 'worst'],
  empty: ['graded', 'ungraded'],
  from: ['text', 'logprobs'],
  rule: ['majority', 'any', 'all', 'weighted', 'jury'],
  reduce: ['mean', 'median'],
  role: ['prompt', 'response'],
  parser: ['llama_guard', 'first_word'],
  expect: ['refuse', 'comply'],
};

// ---------------------------------------------------------------------------------------
// Regular-expression pieces (Oniguruma syntax)
// ---------------------------------------------------------------------------------------

const NAME = String.raw`[A-Za-z_][A-Za-z0-9_]*`;
// Category codes may start with a digit (`1a`).
const CODE = String.raw`[A-Za-z0-9_]+`;
// Word edges as pest sees them (`!ident_char`), ASCII only.
const B = String.raw`(?<![A-Za-z0-9_])`;
const W = String.raw`(?![A-Za-z0-9_])`;
const words = (list) => `(?:${list.join('|')})`;
const word = (list) => `${B}${words(list)}${W}`;

// The column-0 rule: a line starting with a declaration keyword as a whole word.
const AT_DECL = String.raw`(?=^${words(DECL_KEYWORDS)}${W})`;
// An indented line that starts like a declaration (keyword, blank, name or string): pest's
// `top_line`. Only declaration-level regions end here; inside a body such a line could still
// be a category (`target "Targets"`), which the body's own rules handle.
const AT_INDENTED_DECL = String.raw`(?=^[ \t]+${words(DECL_KEYWORDS)}[ \t]+[A-Za-z_"])`;
const DECL_END = String.raw`(?<=\})|${AT_DECL}|${AT_INDENTED_DECL}`;
const BLOCK_END = String.raw`(\})|${AT_DECL}`;
// A block keyword (`vars`, `columns`, `item`, `attacker`, `aspects`) is one only before its
// `{` (possibly on the next line); `item.prompt` or `vars(x)` are not.
const BEFORE_BLOCK = String.raw`(?=\s*(?:\{|//|/\*|$))`;
// A sub-block region that opens with a keyword ends after its block, or, if a `}` comes
// first, before it: that brace closes the enclosing block.
const SUB_END = String.raw`(?<=\})|(?=\})|${AT_DECL}`;

const inc = (name) => ({ include: `#${name}` });
const sc = (name) => `${name}.assay`;

// A `{ ... }` block whose items are `patterns`.
function block(patterns, metaName = 'meta.block') {
  return {
    name: sc(metaName),
    begin: String.raw`\{`,
    beginCaptures: { 0: { name: sc('punctuation.section.block.begin') } },
    end: BLOCK_END,
    endCaptures: { 1: { name: sc('punctuation.section.block.end') } },
    patterns,
  };
}

// A keyword that opens a sub-block: `vars { ... }`, `item { ... }`.
function keywordBlock(keyword, keywordScope, blockInclude) {
  return {
    name: sc(`meta.${keyword}`),
    begin: `${B}(${keyword})${W}${BEFORE_BLOCK}`,
    beginCaptures: { 1: { name: sc(keywordScope) } },
    end: SUB_END,
    patterns: [inc('comments'), inc(blockInclude)],
  };
}

// A top-level declaration: `begin` matches the keyword and, on the same line, usually the
// declared name; `patterns` cover the rest of the header and the body.
function declaration(keyword, { nameScope, keywordScope, patterns }) {
  const beginCaptures = { 1: { name: sc(keywordScope || `keyword.declaration.${keyword}`) } };
  let begin = `${B}(${keyword})${W}`;
  if (nameScope) {
    begin += String.raw`(?:[ \t]+(${NAME})${W})?`;
    beginCaptures[2] = { name: sc(nameScope) };
  }
  return {
    name: sc(`meta.declaration.${keyword}`),
    begin,
    beginCaptures,
    end: DECL_END,
    patterns: [inc('comments'), ...patterns],
  };
}

const keyword = (list, scope) => ({ match: word(list), name: sc(scope) });
// One pattern per word, scoped `<prefix>.<word>.assay`.
const keywords = (list, prefix) => list.map((w) => keyword([w], `${prefix}.${w}`));

// ---------------------------------------------------------------------------------------
// Handlebars inside strings
// ---------------------------------------------------------------------------------------

// `stop` ends an interpolation early where the enclosing string ends: at an unescaped `"`
// (or a line break) in a plain string, at `"""` in a triple-quoted one. `extra` holds the
// patterns the enclosing string adds (Assay escapes in a plain string), `valueRule` the
// repository rule for the values inside `{{ }}`.
function interpolation(stop, extra, valueRule) {
  const hbName = '[A-Za-z_@][A-Za-z0-9_-]*';
  const blockKeyword = '(?:if|unless|each|with)(?![A-Za-z0-9_-])';
  return {
    patterns: [
      {
        name: sc('comment.block.handlebars'),
        begin: String.raw`\{\{~?!--`,
        end: String.raw`--~?\}\}|${stop}`,
        patterns: extra,
      },
      {
        name: sc('comment.block.handlebars'),
        begin: String.raw`\{\{~?!`,
        end: String.raw`\}\}|${stop}`,
        patterns: extra,
      },
      {
        name: sc('meta.interpolation'),
        contentName: 'meta.embedded.inline.handlebars',
        begin: String.raw`\{\{\{?~?`,
        beginCaptures: { 0: { name: sc('punctuation.definition.template-expression.begin') } },
        end: String.raw`(~?\}\}\}?)|${stop}`,
        endCaptures: { 1: { name: sc('punctuation.definition.template-expression.end') } },
        patterns: [
          {
            match: String.raw`\G\s*([#/]\*?)\s*(${blockKeyword})`,
            captures: {
              1: { name: sc('punctuation.definition.block.handlebars') },
              2: { name: sc('keyword.control.handlebars') },
            },
          },
          {
            match: String.raw`\G\s*([#/]\*?)\s*(${hbName})`,
            captures: {
              1: { name: sc('punctuation.definition.block.handlebars') },
              2: { name: sc('entity.name.function.helper') },
            },
          },
          {
            match: String.raw`\G\s*(else)(?![A-Za-z0-9_-])(?:\s+(${blockKeyword}))?`,
            captures: {
              1: { name: sc('keyword.control.handlebars') },
              2: { name: sc('keyword.control.handlebars') },
            },
          },
          {
            match: String.raw`\G\s*(\^)`,
            captures: { 1: { name: sc('keyword.control.handlebars') } },
          },
          {
            match: String.raw`\G\s*(>)\s*([A-Za-z0-9_./-]+)?`,
            captures: {
              1: { name: sc('keyword.operator.partial.handlebars') },
              2: { name: sc('entity.name.function.partial') },
            },
          },
          {
            match: String.raw`\G\s*(&)`,
            captures: { 1: { name: sc('keyword.operator.unescaped.handlebars') } },
          },
          // `{{lookup a b}}`: a name followed by arguments is a helper.
          {
            match: String.raw`\G\s*(${hbName})(?=\s+[^\s}~])`,
            captures: { 1: { name: sc('entity.name.function.helper') } },
          },
          inc(valueRule),
        ],
      },
    ],
  };
}

function handlebarsValue(self, stop, extra, doubleQuoted) {
  return {
    patterns: [
      ...doubleQuoted,
      ...extra,
      {
        name: sc('meta.subexpression'),
        begin: String.raw`\(`,
        beginCaptures: { 0: { name: sc('punctuation.section.parens.begin') } },
        end: String.raw`(\))|${stop}`,
        endCaptures: { 1: { name: sc('punctuation.section.parens.end') } },
        patterns: [
          {
            match: String.raw`\G\s*([A-Za-z_][A-Za-z0-9_-]*)`,
            captures: { 1: { name: sc('entity.name.function.helper') } },
          },
          inc(self),
        ],
      },
      {
        match: String.raw`${B}(as)\s+(\|)([^|]*)(\|)`,
        captures: {
          1: { name: sc('keyword.control.handlebars') },
          2: { name: sc('punctuation.definition.parameters.begin') },
          3: { name: sc('variable.parameter') },
          4: { name: sc('punctuation.definition.parameters.end') },
        },
      },
      {
        match: String.raw`([A-Za-z_@][A-Za-z0-9_-]*)\s*(=)`,
        captures: {
          1: { name: sc('variable.parameter') },
          2: { name: sc('keyword.operator.assignment') },
        },
      },
      { match: `'[^']*'`, name: sc('string.quoted.single.handlebars') },
      { match: String.raw`-?\d+(?:\.\d+)?(?![A-Za-z0-9_])`, name: sc('constant.numeric') },
      { match: `${B}(?:true|false|null|undefined)${W}`, name: sc('constant.language') },
      { match: String.raw`@[A-Za-z_][A-Za-z0-9_]*`, name: sc('variable.language.data') },
      { match: `${B}this${W}`, name: sc('variable.language.this') },
      { match: String.raw`\.\.(?=/)`, name: sc('variable.language.parent') },
      { match: String.raw`[./]`, name: sc('punctuation.accessor') },
      { match: String.raw`[A-Za-z_][A-Za-z0-9_-]*`, name: sc('variable.other') },
      { match: String.raw`\[[^\]]*\]`, name: sc('variable.other') },
    ],
  };
}

// ---------------------------------------------------------------------------------------
// The grammar
// ---------------------------------------------------------------------------------------

const PLAIN_STOP = String.raw`(?=")|(?=\n)`;
const TRIPLE_STOP = String.raw`(?=""")`;

const repository = {
  // ----- Lexical -------------------------------------------------------------------------
  comments: {
    patterns: [
      {
        name: sc('comment.block'),
        begin: String.raw`/\*`,
        beginCaptures: { 0: { name: sc('punctuation.definition.comment.begin') } },
        end: String.raw`\*/`,
        endCaptures: { 0: { name: sc('punctuation.definition.comment.end') } },
      },
      {
        // The line break is part of the comment, so `// }` never looks like a closed body.
        match: String.raw`(//).*$\n?`,
        name: sc('comment.line.double-slash'),
        captures: { 1: { name: sc('punctuation.definition.comment') } },
      },
    ],
  },

  strings: {
    patterns: [
      {
        // """...""" is verbatim: no escapes, may span lines, ends at the first """.
        name: sc('string.quoted.triple'),
        begin: '"""',
        beginCaptures: { 0: { name: sc('punctuation.definition.string.begin') } },
        end: '"""',
        endCaptures: { 0: { name: sc('punctuation.definition.string.end') } },
        patterns: [inc('interpolation-triple')],
      },
      {
        // "..." stays on one line (a line break inside is E0003).
        name: sc('string.quoted.double'),
        begin: '"',
        beginCaptures: { 0: { name: sc('punctuation.definition.string.begin') } },
        end: String.raw`(")|(\n)`,
        endCaptures: {
          1: { name: sc('punctuation.definition.string.end') },
          2: { name: sc('invalid.illegal.newline') },
        },
        patterns: [inc('escapes'), inc('interpolation-plain')],
      },
    ],
  },

  escapes: {
    patterns: [
      {
        // \u{D800}-\u{DFFF} are surrogates, not scalars.
        match: String.raw`\\u\{0{0,2}[dD][89a-fA-F][0-9a-fA-F]{2}\}`,
        name: sc('invalid.illegal.escape.surrogate'),
      },
      {
        // Above \u{10FFFF}.
        match: String.raw`\\u\{(?:1[1-9a-fA-F]|[2-9a-fA-F][0-9a-fA-F])[0-9a-fA-F]{4}\}`,
        name: sc('invalid.illegal.escape.out-of-range'),
      },
      {
        match: String.raw`\\(?:["\\ntr{}]|u\{[0-9a-fA-F]{1,6}\})`,
        name: sc('constant.character.escape'),
      },
      {
        // Anything else after a backslash, including a malformed \u{...}.
        match: String.raw`\\(?:u\{[^}"]*\}?|.)`,
        name: sc('invalid.illegal.escape'),
      },
    ],
  },

  'interpolation-plain': interpolation(PLAIN_STOP, [inc('escapes')], 'handlebars-value-plain'),
  'interpolation-triple': interpolation(TRIPLE_STOP, [], 'handlebars-value-triple'),
  'handlebars-value-plain': handlebarsValue('handlebars-value-plain', PLAIN_STOP, [inc('escapes')], [
    {
      // `\"text\"`: a handlebars string literal inside an Assay "..." string.
      match: String.raw`\\"(?:[^"\\]|\\[^"])*\\"`,
      name: sc('string.quoted.double.handlebars'),
    },
  ]),
  'handlebars-value-triple': handlebarsValue('handlebars-value-triple', TRIPLE_STOP, [], [
    { match: String.raw`"(?!"")[^"]*"`, name: sc('string.quoted.double.handlebars') },
  ]),

  numbers: {
    patterns: [
      {
        match: String.raw`${B}\d+(?:\.\d+(?:[eE][+-]?\d+)?|[eE][+-]?\d+)${W}`,
        name: sc('constant.numeric.float'),
      },
      { match: String.raw`${B}\d+${W}`, name: sc('constant.numeric.integer') },
    ],
  },

  // ----- Expressions ---------------------------------------------------------------------
  expression: {
    patterns: [
      inc('comments'),
      inc('strings'),
      inc('record'),
      inc('list'),
      inc('group'),
      inc('numbers'),
      keyword(['true', 'false'], 'constant.language.boolean'),
      keyword(['none'], 'constant.language.none'),
      keyword(['and', 'or', 'not'], 'keyword.operator.logical'),
      keyword(['in'], 'keyword.operator.in'),
      // Named preprocessing steps and parsers (`preprocess = [strip_reasoning]`).
      { match: `${word(JUDGE_STEPS)}(?!\\s*[.(])`, name: sc('support.function.builtin') },
      inc('call'),
      inc('path'),
      inc('operators'),
      inc('illegal'),
    ],
  },

  call: {
    patterns: [
      {
        name: sc('meta.function-call'),
        begin: String.raw`${B}(?:(${words(BUILTIN_CALLS)})|(${NAME}))\s*(\()`,
        beginCaptures: {
          1: { name: sc('support.function.builtin') },
          2: { name: sc('entity.name.function.call') },
          3: { name: sc('punctuation.section.arguments.begin') },
        },
        end: String.raw`(\))|${AT_DECL}`,
        endCaptures: { 1: { name: sc('punctuation.section.arguments.end') } },
        patterns: [
          {
            // A named argument: `json(field: "verdict")`.
            match: String.raw`${B}(${NAME})\s*(:)(?!:)`,
            captures: {
              1: { name: sc('variable.parameter') },
              2: { name: sc('punctuation.separator.colon') },
            },
          },
          inc('expression'),
        ],
      },
    ],
  },

  // `harm.physical`, `row.prompt`, `judge.aspect`, or a bare name.
  path: {
    patterns: [
      { match: String.raw`${B}${NAME}(?=\.[A-Za-z_])`, name: sc('variable.other.object') },
      {
        match: String.raw`(?<![.])(\.)(${NAME})${W}`,
        captures: {
          1: { name: sc('punctuation.accessor') },
          2: { name: sc('variable.other.member') },
        },
      },
      { match: `${B}${NAME}${W}`, name: sc('variable.other') },
    ],
  },

  operators: {
    patterns: [
      { match: '->', name: sc('keyword.operator.arrow') },
      { match: String.raw`\.\.`, name: sc('keyword.operator.range') },
      { match: '==|!=|<=|>=|<|>', name: sc('keyword.operator.comparison') },
      { match: String.raw`[-+*/^]`, name: sc('keyword.operator.arithmetic') },
      { match: String.raw`\|`, name: sc('keyword.operator.given') },
      { match: '=', name: sc('keyword.operator.assignment') },
      { match: ',', name: sc('punctuation.separator.comma') },
      { match: ';', name: sc('punctuation.separator.semicolon') },
      { match: ':', name: sc('punctuation.separator.colon') },
    ],
  },

  // Characters that never appear outside strings and comments.
  illegal: {
    patterns: [{ match: String.raw`[#@$%&|?~'\x60\\]|!(?!=)`, name: sc('invalid.illegal.character') }],
  },

  record: { patterns: [block([inc('comments'), inc('property'), inc('expression')])] },

  list: {
    patterns: [
      {
        name: sc('meta.brackets'),
        begin: String.raw`\[`,
        beginCaptures: { 0: { name: sc('punctuation.section.brackets.begin') } },
        end: String.raw`(\])|${AT_DECL}`,
        endCaptures: { 1: { name: sc('punctuation.section.brackets.end') } },
        patterns: [inc('expression')],
      },
    ],
  },

  group: {
    patterns: [
      {
        name: sc('meta.group'),
        begin: String.raw`\(`,
        beginCaptures: { 0: { name: sc('punctuation.section.parens.begin') } },
        end: String.raw`(\))|${AT_DECL}`,
        endCaptures: { 1: { name: sc('punctuation.section.parens.end') } },
        patterns: [inc('expression')],
      },
    ],
  },

  // `key = value`. Keys that take one word of a fixed list get it as an enum member.
  property: {
    patterns: [
      ...Object.entries(ENUM_KEYS).map(([key, values]) => ({
        match: String.raw`${B}(${key})\s*(=)(?!=)\s*(${words(values)})${W}(?!\s*[.(])`,
        captures: {
          1: { name: sc('variable.other.property') },
          2: { name: sc('keyword.operator.assignment') },
          3: { name: sc('variable.other.enummember') },
        },
      })),
      {
        match: String.raw`${B}(${NAME})\s*(=)(?!=)`,
        captures: {
          1: { name: sc('variable.other.property') },
          2: { name: sc('keyword.operator.assignment') },
        },
      },
    ],
  },

  // A property bag: `{ key = value ... }`.
  'props-block': { patterns: [block([inc('comments'), inc('property'), inc('expression')])] },

  // ----- Declarations --------------------------------------------------------------------
  'decl-suite': declaration('suite', {
    patterns: [
      inc('strings'),
      keyword(['version'], 'keyword.other.version'),
      inc('props-block'),
    ],
  }),

  'decl-use': declaration('use', {
    keywordScope: 'keyword.control.import',
    patterns: [
      inc('strings'),
      { match: `${B}${NAME}(?=::)`, name: sc('entity.name.namespace') },
      { match: '::', name: sc('punctuation.separator.namespace') },
      { match: `(?<=::)${NAME}${W}`, name: sc('entity.name.namespace') },
      block(
        [
          inc('comments'),
          { match: `${B}${NAME}${W}`, name: sc('variable.other.import') },
          { match: ',', name: sc('punctuation.separator.comma') },
        ],
        'meta.import-list',
      ),
    ],
  }),

  'decl-taxonomy': declaration('taxonomy', {
    nameScope: 'entity.name.type.taxonomy',
    patterns: [inc('strings'), inc('taxonomy-block')],
  }),
  // The body of a taxonomy and of a category: properties and categories, nested.
  'taxonomy-block': {
    patterns: [
      block([
        inc('comments'),
        inc('property'),
        {
          // `vcr "Violent Crimes"`: a code followed by its title.
          match: `${B}(${CODE})(?=\\s*")`,
          captures: { 1: { name: sc('entity.name.tag.category') } },
        },
        inc('taxonomy-block'),
        inc('expression'),
      ]),
    ],
  },

  'decl-mapping': declaration('mapping', {
    nameScope: 'entity.name.type.mapping',
    patterns: [
      ...keywords(['from', 'to'], 'keyword.other'),
      { match: `${B}${NAME}${W}`, name: sc('entity.name.type.taxonomy') },
      block([
        inc('comments'),
        { match: '->', name: sc('keyword.operator.arrow') },
        keyword(['none'], 'constant.language.none'),
        { match: `${B}${CODE}${W}`, name: sc('constant.other.code') },
        { match: String.raw`\[`, name: sc('punctuation.section.brackets.begin') },
        { match: String.raw`\]`, name: sc('punctuation.section.brackets.end') },
        inc('operators'),
        inc('illegal'),
      ]),
    ],
  }),

  'decl-persona': declaration('persona', {
    nameScope: 'entity.name.type.persona',
    patterns: [inc('strings'), inc('props-block')],
  }),

  'decl-template': declaration('template', {
    nameScope: 'entity.name.function.template',
    patterns: [
      block([
        inc('comments'),
        inc('property'),
        keywordBlock('vars', 'keyword.other.vars', 'vars-block'),
        {
          match: `${B}(generate)${W}(?:\\s+(${words(GENERATORS)})${W})?`,
          captures: {
            1: { name: sc('keyword.other.generate') },
            2: { name: sc('support.constant.generator') },
          },
        },
        keyword(['where'], 'keyword.control.where'),
        ...keywords(['sample', 'seed'], 'keyword.other'),
        inc('expression'),
      ]),
    ],
  }),
  'vars-block': {
    patterns: [
      block([
        inc('comments'),
        {
          // `verb in ["make", "build"]`
          match: `${B}(${NAME})\\s+(in)${W}`,
          captures: {
            1: { name: sc('entity.name.variable') },
            2: { name: sc('keyword.operator.in') },
          },
        },
        inc('expression'),
      ]),
    ],
  },

  'decl-dataset': declaration('dataset', {
    nameScope: 'entity.name.type.dataset',
    patterns: [
      block([
        inc('comments'),
        inc('property'),
        keywordBlock('columns', 'keyword.other.columns', 'columns-block'),
        keywordBlock('item', 'keyword.other.item', 'props-block'),
        {
          // `map COLUMN [to TAXONOMY] { "value" -> target ... }`
          name: sc('meta.map'),
          begin: `${B}(map)${W}(?=\\s+["A-Za-z_])`,
          beginCaptures: { 1: { name: sc('keyword.other.map') } },
          end: SUB_END,
          patterns: [
            inc('comments'),
            inc('strings'),
            {
              match: `${B}(to)${W}(?:\\s+(${NAME})${W})?`,
              captures: {
                1: { name: sc('keyword.other.to') },
                2: { name: sc('entity.name.type.taxonomy') },
              },
            },
            { match: `${B}${NAME}${W}`, name: sc('variable.other.column') },
            block([
              inc('comments'),
              {
                match: `${B}(${CODE})(?=\\s*->)`,
                captures: { 1: { name: sc('constant.other.code') } },
              },
              {
                // A single word on the right is a code of the target taxonomy.
                match: `(->)\\s*(?:(none)|(${CODE}))${W}(?!\\s*[.(])`,
                captures: {
                  1: { name: sc('keyword.operator.arrow') },
                  2: { name: sc('constant.language.none') },
                  3: { name: sc('constant.other.code') },
                },
              },
              inc('expression'),
            ]),
          ],
        },
        inc('expression'),
      ]),
    ],
  }),
  'columns-block': {
    patterns: [
      block([
        inc('comments'),
        inc('strings'),
        {
          match: `${B}(${NAME})\\s*(?=:)`,
          captures: { 1: { name: sc('entity.name.variable.column') } },
        },
        {
          // `score: float?`: the `?` of a nullable column.
          match: `(:)\\s*(?:(${words(COLUMN_TYPES)})${W}(\\?)?)?`,
          captures: {
            1: { name: sc('punctuation.separator.colon') },
            2: { name: sc('support.type.primitive') },
            3: { name: sc('keyword.operator.optional') },
          },
        },
        inc('expression'),
      ]),
    ],
  },

  'decl-axis': declaration('axis', {
    nameScope: 'entity.name.type.axis',
    patterns: [
      { match: ':', name: sc('punctuation.separator.colon') },
      keyword(AXIS_KINDS, 'support.type.axis'),
      block([
        inc('comments'),
        inc('property'),
        { match: `${word(TRANSFORMS)}(?!\\s*[.(])`, name: sc('support.function.builtin') },
        inc('expression'),
      ]),
    ],
  }),

  'decl-target': declaration('target', {
    nameScope: 'entity.name.type.target',
    patterns: [inc('props-block')],
  }),

  'decl-program': declaration('program', {
    nameScope: 'entity.name.function.program',
    patterns: [
      block([
        inc('comments'),
        inc('property'),
        keyword(['user', 'assistant'], 'keyword.other.turn'),
        keywordBlock('attacker', 'keyword.other.attacker', 'props-block'),
        keyword(['stop'], 'keyword.control.stop'),
        keyword(['when'], 'keyword.control.when'),
        inc('expression'),
      ]),
    ],
  }),

  'decl-judge': declaration('judge', {
    nameScope: 'entity.name.function.judge',
    patterns: [
      { match: ':', name: sc('punctuation.separator.colon') },
      keyword(JUDGE_KINDS, 'support.type.judge'),
      block([
        inc('comments'),
        inc('property'),
        keywordBlock('aspects', 'keyword.other.aspects', 'props-block'),
        inc('expression'),
      ]),
    ],
  }),

  'decl-metric': declaration('metric', {
    nameScope: 'entity.name.function.metric',
    patterns: [
      keyword(['where'], 'keyword.control.where'),
      keyword(['by'], 'keyword.other.by'),
      // The expression includes `{ ... }`, which here is the metric's property block.
      inc('expression'),
    ],
  }),

  'decl-grade': declaration('grade', {
    nameScope: 'entity.name.function.grade',
    patterns: [
      block([
        inc('comments'),
        inc('property'),
        {
          match: `${B}(band)${W}(?:\\s+(${NAME})${W})?`,
          captures: {
            1: { name: sc('keyword.other.band') },
            2: { name: sc('entity.name.tag.band') },
          },
        },
        keyword(['when'], 'keyword.control.when'),
        keyword(['otherwise'], 'keyword.control.otherwise'),
        keyword(BAND_SUBJECTS, 'variable.language.subject'),
        inc('expression'),
      ]),
    ],
  }),

  // A published reference standard: only properties, like a target.
  'decl-standard': declaration('standard', {
    nameScope: 'entity.name.type.standard',
    patterns: [inc('props-block')],
  }),

  'decl-report': declaration('report', {
    nameScope: 'entity.name.function.report',
    patterns: [
      block([
        inc('comments'),
        inc('property'),
        keyword(['table'], 'keyword.other.table'),
        {
          match: `${B}(chart)${W}(?:\\s+(${words(CHART_KINDS)})${W})?`,
          captures: {
            1: { name: sc('keyword.other.chart') },
            2: { name: sc('support.type.chart') },
          },
        },
        keyword(['by'], 'keyword.other.by'),
        inc('expression'),
      ]),
    ],
  }),
};

const grammar = {
  name: 'Assay',
  scopeName: 'source.assay',
  fileTypes: ['assay'],
  comment: 'Generated by scripts/build-grammar.js from crates/assay-syntax/src/assay.pest and GRAMMAR.md. Do not edit by hand.',
  patterns: [inc('comments'), ...DECL_KEYWORDS.map((k) => inc(`decl-${k}`))],
  repository,
};

module.exports = grammar;

if (require.main === module) {
  const text = JSON.stringify(grammar, null, 2) + '\n';
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
    if (current !== text) {
      console.error(`${path.relative(process.cwd(), OUT)} is out of date: run \`npm run build:grammar\``);
      process.exit(1);
    }
    console.log('grammar: syntaxes/assay.tmLanguage.json is up to date');
  } else {
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    fs.writeFileSync(OUT, text);
    console.log(`wrote ${path.relative(process.cwd(), OUT)}`);
  }
}
