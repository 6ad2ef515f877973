; Highlights for Assay. Capture names follow nvim-treesitter and the tree-sitter CLI; see the
; README for the renames Helix wants.
;
; No pattern here captures a node another pattern captures too: editors disagree on which of
; two overlapping captures wins (the tree-sitter CLI and Helix take the first, Neovim the
; last), so every identifier is captured by its position only.

; Keywords --------------------------------------------------------------------------------

[
  "suite"
  "version"
  "use"
  "taxonomy"
  "mapping"
  "from"
  "to"
  "persona"
  "template"
  "vars"
  "generate"
  "where"
  "sample"
  "seed"
  "dataset"
  "columns"
  "map"
  "item"
  "axis"
  "target"
  "program"
  "user"
  "assistant"
  "attacker"
  "stop"
  "when"
  "judge"
  "aspects"
  "metric"
  "by"
  "grade"
  "band"
  "otherwise"
  "standard"
  "report"
  "table"
  "chart"
] @keyword

[
  "and"
  "or"
  "not"
  "in"
] @keyword.operator

; Declarations: the things a spec defines are types, those that compute are functions (as in
; the VS Code grammar).

(taxonomy_declaration name: (identifier) @type)
(mapping_declaration name: (identifier) @type)
(mapping_declaration from: (identifier) @type)
(mapping_declaration to: (identifier) @type)
(dataset_declaration name: (identifier) @type)
(axis_declaration name: (identifier) @type)
(axis_declaration kind: (identifier) @type.builtin)
(persona_declaration name: (identifier) @type)
(target_declaration name: (identifier) @type)
(standard_declaration name: (identifier) @type)
(template_declaration name: (identifier) @function)
(program_declaration name: (identifier) @function)
(judge_declaration name: (identifier) @function)
(judge_declaration kind: (identifier) @type.builtin)
(metric_declaration name: (identifier) @function)
(grade_declaration name: (identifier) @function)
(report_declaration name: (identifier) @function)

; Taxonomy codes: categories, mapping rules and value-map keys.
(code) @constant

; Imports.
(module_path (identifier) @module)
(use_list (identifier) @variable)

; Blocks ----------------------------------------------------------------------------------

(property key: (identifier) @property)

(column name: (identifier) @property)
(column type: (identifier) @type.builtin)
(value_map column: (identifier) @property)
(value_map taxonomy: (identifier) @type)

(variable_binding name: (identifier) @variable.parameter)
(generate_clause generator: (identifier) @function.builtin)

(band name: (identifier) @label)

(by_clause (identifier) @variable)
(table (identifier) @function)
(chart kind: (identifier) @type.builtin)
(chart metric: (identifier) @function)

; Expressions -----------------------------------------------------------------------------

(call function: (identifier) @function.call)
(named_argument name: (identifier) @variable.parameter)

; `row.prompt`, `harm.physical`: the head is a name, the rest are fields.
(path . (identifier) @variable)
(path "." (identifier) @property)

; Literals --------------------------------------------------------------------------------

(string) @string
(escape_sequence) @string.escape
(number) @number
(boolean) @boolean
(comment) @comment

; Punctuation and operators ---------------------------------------------------------------

[
  "="
  "=="
  "!="
  "<"
  "<="
  ">"
  ">="
  "+"
  "-"
  "*"
  "/"
  "^"
  "|"
  "->"
  ".."
] @operator

[
  "{"
  "}"
  "["
  "]"
  "("
  ")"
] @punctuation.bracket

[
  ","
  ";"
  ":"
  "."
  "::"
] @punctuation.delimiter
