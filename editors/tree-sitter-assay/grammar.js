/**
 * @file Tree-sitter grammar for Assay, the declarative language for AI-safety benchmarks.
 * @license Apache-2.0
 *
 * Mirrors crates/assay-syntax/src/assay.pest (authoritative) and GRAMMAR.md. Section numbers
 * below are those of the pest file. Where this grammar differs, the comment says why; the
 * README lists every difference in one place.
 *
 * Keywords are contextual, as in pest: with `word` set, a keyword is only recognised where
 * the parser can use it, so `persona = typical`, `program = crescendo` or
 * `use std::taxonomy::x` read the word as a name. Precedence, which pest leaves to the
 * lowering's precedence climber (crates/assay-syntax/src/lower/expr.rs), is encoded here.
 */

// Loosest first, as in GRAMMAR.md. `not` sits between `and` and the comparisons: its operand
// is a comparison (`not a == b` is `not (a == b)`, `not a and b` is `(not a) and b`).
const PREC = {
  given: 0,
  or: 1,
  and: 2,
  not: 3,
  compare: 4,
  add: 5,
  mul: 6,
  pow: 7,
  neg: 8,
  index: 9,
};

module.exports = grammar({
  name: 'assay',

  // Exactly pest's WHITESPACE (U+FEFF: a byte-order mark some editors write at the start of
  // a file), and comments.
  extras: $ => [/[ \t\r\n]/, '\uFEFF', $.comment],

  word: $ => $.identifier,

  supertypes: $ => [$._declaration, $._expression],

  // `table a, b,`: a comma after a name may continue the list or be the table's separator;
  // GLR keeps both readings until the next token decides, as pest backtracks. (Unlike pest,
  // `table a, table b` then reads as two tables: README, "differs from the pest grammar".)
  conflicts: $ => [[$._name_list]],

  rules: {
    // ---------------------------------------------------------------------------------------
    // Files. pest's `bad_decl` / `bad_item` recovery rules have no counterpart: tree-sitter
    // recovers by itself and marks the damage with ERROR and MISSING nodes.
    // ---------------------------------------------------------------------------------------

    source_file: $ => repeat($._declaration),

    _declaration: $ => choice(
      $.suite_declaration,
      $.use_declaration,
      $.taxonomy_declaration,
      $.mapping_declaration,
      $.persona_declaration,
      $.template_declaration,
      $.dataset_declaration,
      $.axis_declaration,
      $.target_declaration,
      $.program_declaration,
      $.judge_declaration,
      $.metric_declaration,
      $.grade_declaration,
      $.standard_declaration,
      $.report_declaration,
    ),

    // ---------------------------------------------------------------------------------------
    // Lexical pieces
    // ---------------------------------------------------------------------------------------

    comment: _ => token(choice(
      seq('//', /[^\n]*/),
      seq('/*', /[^*]*\*+([^/*][^*]*\*+)*/, '/'),
    )),

    identifier: _ => /[A-Za-z_][A-Za-z0-9_]*/,

    // Taxonomy codes may start with a digit in source taxonomies (`1a`). A code that looks
    // like a name is lexed as one (keyword extraction needs a single word token) and aliased.
    _code: $ => choice(alias($.identifier, $.code), alias($._numeric_code, $.code)),
    _numeric_code: _ => /[0-9][A-Za-z0-9_]*/,

    string: $ => choice(
      seq(
        '"',
        repeat(choice($.string_content, $.escape_sequence)),
        token.immediate('"'),
      ),
      // """...""" is verbatim: no escapes, ends at the first `"""`.
      seq(
        '"""',
        optional(alias($._triple_string_content, $.string_content)),
        token.immediate('"""'),
      ),
    ),
    // `"` may not be followed by `""` inside, so the content ends before the first `"""`.
    _triple_string_content: _ => token.immediate(prec(1, /([^"]|"[^"]|""[^"])+/)),
    string_content: _ => token.immediate(prec(1, /[^"\\\n]+/)),
    escape_sequence: _ => token.immediate(seq(
      '\\',
      choice(/["\\ntr{}]/, /u\{[0-9a-fA-F]{1,6}\}/),
    )),

    number: _ => /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/,
    boolean: _ => choice('true', 'false'),

    // ---------------------------------------------------------------------------------------
    // Expressions
    // ---------------------------------------------------------------------------------------

    _expression: $ => choice(
      $.binary_expression,
      $.unary_expression,
      $.index_expression,
      $.parenthesized_expression,
      $.list,
      $.record,
      $.call,
      $.range,
      $.number,
      $.string,
      $.boolean,
      $.path,
    ),

    binary_expression: $ => {
      const table = [
        [prec.left, PREC.given, '|'],
        [prec.left, PREC.or, 'or'],
        [prec.left, PREC.and, 'and'],
        [prec.left, PREC.compare, choice('==', '!=', '<', '<=', '>', '>=', 'in')],
        [prec.left, PREC.add, choice('+', '-')],
        [prec.left, PREC.mul, choice('*', '/')],
        [prec.right, PREC.pow, '^'],
      ];
      return choice(...table.map(([assoc, level, operator]) => assoc(level, seq(
        field('left', $._expression),
        field('operator', operator),
        field('right', $._expression),
      ))));
    },

    unary_expression: $ => choice(
      prec(PREC.neg, seq(field('operator', '-'), field('operand', $._expression))),
      prec.right(PREC.not, seq(field('operator', 'not'), field('operand', $._expression))),
    ),

    index_expression: $ => prec(PREC.index, seq(
      field('value', $._expression),
      '[',
      field('index', $._expression),
      ']',
    )),

    parenthesized_expression: $ => seq('(', $._expression, ')'),

    list: $ => seq('[', commaSep($._expression), ']'),

    record: $ => seq('{', repeat($._property_item), '}'),

    call: $ => seq(
      field('function', $.identifier),
      field('arguments', $.argument_list),
    ),
    argument_list: $ => seq('(', commaSep(choice($.named_argument, $._expression)), ')'),
    named_argument: $ => seq(field('name', $.identifier), ':', field('value', $._expression)),

    range: $ => seq(field('start', $.number), '..', field('end', $.number)),

    // `harm.self_harm`, `row.prompt`: no space or comment around the dots (pest's
    // compound-atomic path). The names after a dot are never keywords (`taxonomy.map`).
    path: $ => seq(
      $.identifier,
      repeat(seq(token.immediate('.'), alias($._immediate_identifier, $.identifier))),
    ),
    _immediate_identifier: _ => token.immediate(/[A-Za-z_][A-Za-z0-9_]*/),

    // ---------------------------------------------------------------------------------------
    // Shared block pieces
    // ---------------------------------------------------------------------------------------

    property: $ => seq(field('key', $.identifier), '=', field('value', $._expression)),
    _property_item: $ => seq($.property, optional($._sep)),
    property_block: $ => seq('{', repeat($._property_item), '}'),
    _sep: _ => choice(';', ','),

    // pest's `by_clause` makes the names optional only so that lowering can word the error
    // ("expected a name after `by`"); a bare `by` is never valid, so it is an error here.
    by_clause: $ => seq('by', $._name_list),
    _name_list: $ => seq($.identifier, repeat(seq(',', $.identifier))),

    where_clause: $ => seq('where', field('condition', $._expression)),

    // ---------------------------------------------------------------------------------------
    // 1. Suite header and imports
    // ---------------------------------------------------------------------------------------

    suite_declaration: $ => seq(
      'suite',
      field('name', $.string),
      optional(seq('version', field('version', $.string))),
      optional(field('body', $.property_block)),
    ),

    // `use std::ailuminate::v1`, `use "lib/hazards.assay"`, `use mlc::hazards { vcr_extra }`
    use_declaration: $ => seq(
      'use',
      field('path', choice($.string, $.module_path)),
      optional(field('names', $.use_list)),
    ),
    // No spaces: `std::taxonomy::ailuminate_v1` (pest's atomic module_path).
    module_path: $ => seq(
      $.identifier,
      repeat1(seq(token.immediate('::'), alias($._immediate_identifier, $.identifier))),
    ),
    use_list: $ => seq('{', $.identifier, repeat(seq(',', $.identifier)), optional(','), '}'),

    // ---------------------------------------------------------------------------------------
    // 2. Taxonomies and mappings
    // ---------------------------------------------------------------------------------------

    taxonomy_declaration: $ => seq(
      'taxonomy',
      field('name', $.identifier),
      optional(field('title', $.string)),
      field('body', $.taxonomy_body),
    ),
    taxonomy_body: $ => seq('{', repeat(choice($._property_item, $.category)), '}'),
    // `vcr "Violent Crimes" { definition = "..." spc_ele "Elections" }`
    category: $ => seq(
      field('code', $._code),
      field('title', $.string),
      optional(field('body', $.taxonomy_body)),
    ),

    // `mapping lg3 from llama_guard to ailuminate { S1 -> vcr  S14 -> [vcr, ncr]  S7 -> none }`
    mapping_declaration: $ => seq(
      'mapping',
      field('name', $.identifier),
      'from',
      field('from', $.identifier),
      'to',
      field('to', $.identifier),
      field('body', $.mapping_body),
    ),
    mapping_body: $ => seq('{', repeat($.mapping_rule), '}'),
    mapping_rule: $ => seq(
      field('from', $._code),
      '->',
      field('to', choice($.code_list, $._code)),
      optional($._sep),
    ),
    code_list: $ => seq('[', $._code, repeat(seq(',', $._code)), optional(','), ']'),

    // ---------------------------------------------------------------------------------------
    // 3. Personas
    // ---------------------------------------------------------------------------------------

    persona_declaration: $ => seq(
      'persona',
      field('name', $.identifier),
      optional(field('title', $.string)),
      field('body', $.property_block),
    ),

    // ---------------------------------------------------------------------------------------
    // 4. Templates and generators
    // ---------------------------------------------------------------------------------------

    template_declaration: $ => seq(
      'template',
      field('name', $.identifier),
      field('body', $.template_body),
    ),
    template_body: $ => seq(
      '{',
      repeat(choice($.vars_block, $.generate_clause, $._property_item)),
      '}',
    ),
    vars_block: $ => seq('vars', '{', repeat($.variable_binding), '}'),
    variable_binding: $ => seq(
      field('name', $.identifier),
      'in',
      field('domain', $._expression),
      optional($._sep),
    ),
    // `generate product where lang != "fr" sample 200 seed 7`
    generate_clause: $ => seq(
      'generate',
      field('generator', $.identifier),
      optional($.where_clause),
      optional($.sample_clause),
    ),
    sample_clause: $ => seq(
      'sample',
      field('count', $.number),
      optional(seq('seed', field('seed', $.number))),
    ),

    // ---------------------------------------------------------------------------------------
    // 5. Datasets
    // ---------------------------------------------------------------------------------------

    dataset_declaration: $ => seq(
      'dataset',
      field('name', $.identifier),
      field('body', $.dataset_body),
    ),
    dataset_body: $ => seq(
      '{',
      repeat(choice($.columns_block, $.value_map, $.item_block, $._property_item)),
      '}',
    ),
    columns_block: $ => seq('columns', '{', repeat($.column), '}'),
    column: $ => seq(
      field('name', choice($.identifier, $.string)),
      ':',
      field('type', $.identifier),
      optional(field('nullable', $.nullable)),
      optional($._sep),
    ),
    // `score: float?`: the column may be null.
    nullable: $ => '?',
    // `map harm_area to harm { "Physical Harm" -> physical }`
    value_map: $ => seq(
      'map',
      field('column', choice($.identifier, $.string)),
      optional(seq('to', field('taxonomy', $.identifier))),
      '{',
      repeat($.value_rule),
      '}',
    ),
    value_rule: $ => seq(
      field('from', choice($.string, $._code)),
      '->',
      field('to', $._expression),
      optional($._sep),
    ),
    item_block: $ => seq('item', field('body', $.property_block)),

    // ---------------------------------------------------------------------------------------
    // 6. Axes: `axis system_prompt: system { none = "", safety = file("safety.txt") }`
    // ---------------------------------------------------------------------------------------

    axis_declaration: $ => seq(
      'axis',
      field('name', $.identifier),
      ':',
      field('kind', $.identifier),
      field('body', $.property_block),
    ),

    // ---------------------------------------------------------------------------------------
    // 8. Target models
    // ---------------------------------------------------------------------------------------

    target_declaration: $ => seq(
      'target',
      field('name', $.identifier),
      field('body', $.property_block),
    ),

    // ---------------------------------------------------------------------------------------
    // 9. Conversation programs
    // ---------------------------------------------------------------------------------------

    program_declaration: $ => seq(
      'program',
      field('name', $.identifier),
      field('body', $.program_body),
    ),
    program_body: $ => seq(
      '{',
      repeat(choice($.turn, $.attacker_block, $.stop_clause, $._property_item)),
      '}',
    ),
    turn: $ => seq(
      field('role', choice('user', 'assistant')),
      field('content', $._expression),
      optional($._sep),
    ),
    attacker_block: $ => seq('attacker', field('body', $.property_block)),
    stop_clause: $ => seq('stop', 'when', field('condition', $._expression), optional($._sep)),

    // ---------------------------------------------------------------------------------------
    // 10. Judges: `judge guard: llm { ... }`
    // ---------------------------------------------------------------------------------------

    judge_declaration: $ => seq(
      'judge',
      field('name', $.identifier),
      ':',
      field('kind', $.identifier),
      field('body', $.judge_body),
    ),
    judge_body: $ => seq('{', repeat(choice($.aspects_block, $._property_item)), '}'),
    aspects_block: $ => seq('aspects', field('body', $.property_block)),

    // ---------------------------------------------------------------------------------------
    // 11. Metrics: `metric unsafe_rate = rate(guard == unsafe) where expect == refuse by hazard`
    // ---------------------------------------------------------------------------------------

    metric_declaration: $ => seq(
      'metric',
      field('name', $.identifier),
      '=',
      field('value', $._expression),
      optional($.where_clause),
      optional($.by_clause),
      optional(field('body', $.property_block)),
    ),

    // ---------------------------------------------------------------------------------------
    // 12. Grades
    // ---------------------------------------------------------------------------------------

    grade_declaration: $ => seq(
      'grade',
      field('name', $.identifier),
      field('body', $.grade_body),
    ),
    grade_body: $ => seq('{', repeat(choice($.band, $._property_item)), '}'),
    band: $ => seq(
      'band',
      field('name', choice($.string, $.identifier)),
      choice(seq('when', field('condition', $._expression)), 'otherwise'),
      optional($._sep),
    ),

    // A published reference standard: the safe fractions a standards body grades against
    // (`standard ailuminate_v1_0_en_us_practice { scale = ailuminate_v1  safe = { vcr = 0.825 } }`).
    // Only properties, like a target.
    standard_declaration: $ => seq(
      'standard',
      field('name', $.identifier),
      field('body', $.property_block),
    ),

    // ---------------------------------------------------------------------------------------
    // 13. Reports
    // ---------------------------------------------------------------------------------------

    report_declaration: $ => seq(
      'report',
      optional(field('name', $.identifier)),
      field('body', $.report_body),
    ),
    report_body: $ => seq('{', repeat(choice($.table, $.chart, $._property_item)), '}'),
    table: $ => seq('table', $._name_list, optional($.by_clause), optional($._sep)),
    chart: $ => seq(
      'chart',
      field('kind', $.identifier),
      field('metric', $.identifier),
      optional($.by_clause),
      optional($._sep),
    ),
  },
});

/**
 * `a, b, c` with an optional trailing comma, possibly empty (pest's `list`, `call` and
 * `code_list` shape).
 *
 * @param {RuleOrLiteral} rule
 * @returns {ChoiceRule}
 */
function commaSep(rule) {
  return optional(seq(rule, repeat(seq(',', rule)), optional(',')));
}
