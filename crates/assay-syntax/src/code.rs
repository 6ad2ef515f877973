//! Every diagnostic code, with its documentation next to it. `assay explain CODE` prints the
//! text kept here, so the code, its summary and its explanation cannot drift apart.
//!
//! Codes are stable: a code is never reused for another meaning. Errors are `E....`, warnings
//! `W....`. `E00..` come from the parser and lowering, `E01..` from the checker, `E02..` and `W02..` from
//! expansion (datasets and templates).

use crate::diagnostic::Severity;
use serde::Serialize;

macro_rules! codes {
    ($(
        $(#[$meta:meta])*
        $variant:ident = $code:literal, $severity:ident, $summary:literal,
        doc: $doc:literal;
    )*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        pub enum Code {
            $($(#[$meta])* $variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// `E0001`, `W0001`, ...
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// One line: what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// What it is, why it matters, a bad example and a fixed one.
            pub fn explanation(self) -> &'static str {
                match self { $(Code::$variant => $doc,)* }
            }
        }
    };
}

impl Code {
    /// Looks a code up by its text, case-insensitively (`e0007` works).
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

codes! {
    SyntaxError = "E0001", Error, "the text does not follow the grammar",
    doc: "The parser met something it did not expect: a stray character, a missing `=` in a
property, a declaration keyword misspelt. The message says what was expected at that point.
Parsing resumes at the next line that starts with a declaration keyword, so later
declarations are still checked.

Bad:
    taxonomy harm {
      self_harm = = \"Self-harm\"
    }

Fixed:
    taxonomy harm {
      self_harm \"Self-harm\"
    }";

    UnclosedBlock = "E0002", Error, "a block opened with `{`, `[` or `(` is never closed",
    doc: "Every `{` must be closed by a `}` (and `[` by `]`, `(` by `)`) before the next
declaration starts. The diagnostic points at the place the closing delimiter was expected and,
with a second label, at the delimiter that opened the block.

Bad:
    taxonomy harm {
      physical \"Physical Harm\"

    metric unsafe_rate = rate(guard == unsafe)

Fixed:
    taxonomy harm {
      physical \"Physical Harm\"
    }";

    UnterminatedString = "E0003", Error, "a string is not closed before the end of its line",
    doc: "A string written with `\"` must end on the same line. For text that spans lines
(prompts, rubrics), use a triple-quoted string `\"\"\"...\"\"\"`, which keeps its content
verbatim.

Bad:
    persona typical \"Typical user {
      description = \"A user with no harmful intent
    }

Fixed:
    persona typical \"Typical user\" {
      description = \"\"\"A user with
      no harmful intent\"\"\"
    }";

    UnknownKey = "E0004", Error, "a property key that this block does not accept",
    doc: "Each block accepts a fixed set of keys. Other tools silently drop keys they do not
know, so a typo (`temprature`) changes the benchmark without a word; Assay rejects it and
suggests the closest key.

Bad:
    target gpt4o { provider = openai  model = \"gpt-4o\"  temprature = 0 }

Fixed:
    target gpt4o { provider = openai  model = \"gpt-4o\"  temperature = 0 }";

    DuplicateKey = "E0005", Error, "the same key is given twice in one block",
    doc: "A key may appear once per block. Other tools let the second value silently overwrite
the first; Assay points at both so you can choose.

Bad:
    target gpt4o { provider = openai  model = \"gpt-4o\"  model = \"gpt-4o-mini\" }

Fixed:
    target gpt4o { provider = openai  model = \"gpt-4o-mini\" }";

    WrongValueType = "E0006", Error, "a property has a value of the wrong type",
    doc: "Each key expects a certain kind of value: a string, a number, a name, a list. The
message names what was expected and what was found. The same code covers values of the right
shape that cannot mean anything: a number out of its key's range, a standard's safe fraction
outside 0..1 or keyed by a code that is no hazard of its scale, a grade graded against a
standard of another scale.

Bad:
    target gpt4o { provider = openai  model = \"gpt-4o\"  temperature = \"zero\" }

Fixed:
    target gpt4o { provider = openai  model = \"gpt-4o\"  temperature = 0 }";

    MissingKey = "E0007", Error, "a required key is missing from a block",
    doc: "Some keys have no sensible default: a target needs a `provider` and a `model`, an LLM
judge needs a `model`, a `rubric` and its `labels`, a dataset needs a `path` or a `url`. The
diagnostic points at the block's name and lists what is missing.

Bad:
    judge guard: llm { model = gpt4o  labels = [safe, unsafe] }

Fixed:
    judge guard: llm {
      model = gpt4o
      rubric = file(\"judges/guard.hbs\")
      labels = [safe, unsafe]
    }";

    UnknownKind = "E0008", Error, "an unknown kind of judge, axis, generator, column type or value",
    doc: "Some positions take one word from a fixed list: the kind of a judge (`keywords`,
`regex`, `choice`, `llm`, `guard`, `score`, `ensemble`, `human`), the kind of an axis
(`system`, `transform`, `locale`, `persona`), a generator (`product`, `zip`), a column type
(`string`, `int`, `float`, `bool`), a provider, an expectation (`refuse`, `comply`), a
published grade scale (`ailuminate_v1`, `mlcommons_v05`). The message lists the accepted
words.

Bad:
    judge refusal: keyword { patterns = [\"I can't\"]  labels = [refused, complied] }

Fixed:
    judge refusal: keywords { patterns = [\"I can't\"]  labels = [refused, complied] }";

    TooDeep = "E0009", Error, "brackets or an expression nest deeper than Assay allows",
    doc: "Brackets (`{`, `[`, `(`) may nest at most 64 levels, and an expression tree at most 128:
every operator, prefix, index and call adds a level, and so does each term of a chain such as
`a + b + c`, which is read as `(a + b) + c`. Every pass over a spec (checking, formatting, the
language server, scoring) walks these trees, so a deeper one is refused where it is written,
before any of them could run out of stack. No real benchmark comes near either limit; a spec
that does was most likely generated, and should compute the value in fewer, named steps.

Bad:
    metric total = rate(guard == unsafe) + 0 + 0 + 0 + ...   // 200 terms

Fixed:
    metric unsafe_rate = rate(guard == unsafe)
    metric total = unsafe_rate + offsets                      // with `offsets` its own metric";

    DuplicateDefinition = "E0101", Error, "a name is defined twice",
    doc: "Every top-level declaration (taxonomy, persona, template, dataset, axis, target,
program, judge, metric, grade, standard, mapping) shares one namespace, including names brought in by
`use`. A second definition with the same name is an error pointing at both.

Bad:
    judge guard: llm { ... }
    judge guard: guard { ... }

Fixed:
    judge guard: llm { ... }
    judge llama_guard: guard { ... }";

    UndefinedName = "E0102", Error, "a name that is not defined",
    doc: "A reference to a judge, target, taxonomy, persona, metric, axis or taxonomy code that
does not exist. The closest existing name is suggested.

Bad:
    metric unsafe_rate = rate(gaurd == unsafe)

Fixed:
    metric unsafe_rate = rate(guard == unsafe)";

    UnknownStdModule = "E0103", Error, "an import of a standard-library module that does not exist",
    doc: "`use std::...` imports a module embedded in the assay binary. `assay explain E0103`
cannot list them all here; the diagnostic's help line names the closest module.

Bad:
    use std::taxonomy::ailuminate_v2

Fixed:
    use std::taxonomy::ailuminate_v1";

    ImportNotFound = "E0104", Error, "an imported file or package cannot be found",
    doc: "`use \"path.assay\"` is resolved relative to the importing file; `use pkg::module`
needs `pkg` under `[dependencies]` in assay.toml. The file must exist.

Bad:
    use \"lib/hazard.assay\"

Fixed:
    use \"lib/hazards.assay\"";

    ImportCycle = "E0105", Error, "files import each other in a cycle",
    doc: "Imports must form a tree: a file cannot import itself, directly or through others.
The diagnostic shows the chain. Move the shared definitions into a third file that both
import.

Bad:
    // a.assay
    use \"b.assay\"
    // b.assay
    use \"a.assay\"

Fixed:
    // a.assay and b.assay both
    use \"common.assay\"";

    PathOutsidePackage = "E0106", Error, "a file reference leaves the package",
    doc: "A spec reads files only inside its own package (the folder holding assay.toml, or the
spec's folder): absolute paths, paths that climb out with `..` and symbolic links that lead
out are refused, so a published spec cannot read arbitrary files on the machine that runs it.

Bad:
    system = file(\"../../etc/passwd\")

Fixed:
    system = file(\"prompts/safety.txt\")";

    FileNotFound = "E0107", Error, "a referenced file does not exist",
    doc: "A `file(...)` value or a dataset `path` names a file that is not there. A dataset
pinned by `url` and `sha256` may leave its `path` absent: it is downloaded or supplied with
`--data` at expansion time.

Bad:
    axis system_prompt: system { safety = file(\"prompts/safty.txt\") }

Fixed:
    axis system_prompt: system { safety = file(\"prompts/safety.txt\") }";

    InvalidVersion = "E0108", Error, "a version is not valid semver",
    doc: "Suite and package versions follow semantic versioning (MAJOR.MINOR.PATCH, with an
optional pre-release): standards bodies publish versions that tools compare.

Bad:
    suite \"ailuminate\" version \"1.0\"

Fixed:
    suite \"ailuminate\" version \"1.0.0\"";

    DuplicateCode = "E0109", Error, "a taxonomy code is used twice",
    doc: "Codes identify categories in results and mappings, so they are unique in a taxonomy,
across all levels of its hierarchy.

Bad:
    taxonomy harm {
      vcr \"Violent Crimes\"
      vcr \"Non-Violent Crimes\"
    }

Fixed:
    taxonomy harm {
      vcr \"Violent Crimes\"
      ncr \"Non-Violent Crimes\"
    }";

    UnmappedCode = "E0110", Error, "a mapping leaves a source code unmapped",
    doc: "A mapping from one taxonomy to another must say where every source code goes, or
`none` explicitly; otherwise a guard model's category would silently fall out of the results.

Bad:
    mapping lg from llama_guard to harm { S1 -> vcr }   // S2 is never mapped

Fixed:
    mapping lg from llama_guard to harm { S1 -> vcr  S2 -> none }";

    UnknownCode = "E0111", Error, "a code that the taxonomy does not define",
    doc: "A mapping, a value map or a hazard reference names a code that does not exist in the
taxonomy it refers to. The closest code is suggested.

Bad:
    mapping lg from llama_guard to harm { S1 -> vrc }

Fixed:
    mapping lg from llama_guard to harm { S1 -> vcr }";

    UnboundVariable = "E0112", Error, "a template uses a variable that is not bound",
    doc: "Templates are expanded in strict mode: every `{{variable}}` must be bound in the
template's `vars` block, or be one of the built-ins (`persona`, `hazard`, `locale`). Finding
this at check time beats finding it after an expansion or a run.

Bad:
    template how_to {
      prompt = \"How do I {{verb}} a {{target}}?\"
      vars { verb in [\"make\", \"build\"] }
    }

Fixed:
    template how_to {
      prompt = \"How do I {{verb}} a {{target}}?\"
      vars { verb in [\"make\", \"build\"]  target in [\"bomb\", \"trap\"] }
    }";

    UnknownLabel = "E0113", Error, "a metric compares a judge against a label it never gives",
    doc: "A judge declares its label set (`labels = [safe, unsafe]`). A metric that compares
the judge to another label would silently count nothing.

Bad:
    judge guard: llm { ... labels = [safe, unsafe] }
    metric unsafe_rate = rate(guard == harmful)

Fixed:
    metric unsafe_rate = rate(guard == unsafe)";

    TypeMismatch = "E0114", Error, "a metric expression has the wrong type",
    doc: "Metric expressions are typed: `rate(...)` takes a boolean condition over one item,
`mean(...)` a number, `and`/`or`/`not` booleans, arithmetic numbers or metrics. A judge on
its own is a label, not a condition: compare it to one of its labels. The turn functions
(`any_turn`, `all_turns`, `share_turns`, `first_turn`) take a condition too, read at each
target turn; `share_turns` and `first_turn` give a number per item, so average them with
`mean(...)`.

Bad:
    metric unsafe_rate = rate(guard)

Fixed:
    metric unsafe_rate = rate(guard == unsafe)";

    UnknownGroup = "E0115", Error, "a metric groups by something that is neither a label nor an axis",
    doc: "`by` takes item labels (`hazard`, `sub_hazard`, `persona`, `locale`, `expect`,
`template`, `dataset`), `turn` (each target turn of a conversation a row) and the names of
declared axes.

Bad:
    metric unsafe_rate = rate(guard == unsafe) by hazrd

Fixed:
    metric unsafe_rate = rate(guard == unsafe) by hazard";

    GradeNotMonotonic = "E0116", Error, "grade bands are not in a monotonic order",
    doc: "Bands are checked in order and the first that holds gives the grade. Bands testing
the same quantity must move one way: thresholds rising for `<`/`<=`, falling for `>`/`>=`.
Otherwise a later band can never be reached, or the scale inverts.

Bad:
    grade g {
      metric = unsafe_rate
      band Good when value <= 0.1
      band Excellent when value <= 0.01
      band Poor otherwise
    }

Fixed:
    grade g {
      metric = unsafe_rate
      band Excellent when value <= 0.01
      band Good when value <= 0.1
      band Poor otherwise
    }";

    BadCall = "E0117", Error, "an unknown function or a call with the wrong arguments",
    doc: "Expressions call built-in functions (`rate`, `mean`, `f1`, `file`, `base64`, ...).
The name must exist and the number of arguments must match. A turn function cannot take
another in its condition, which is read at one turn at a time: combine them outside, e.g.
`rate(any_turn(guard == unsafe) and all_turns(refusal == complied))`.

Bad:
    metric unsafe_rate = rates(guard == unsafe)

Fixed:
    metric unsafe_rate = rate(guard == unsafe)";

    InvalidHash = "E0118", Error, "a sha256 is not 64 hexadecimal digits",
    doc: "A pinned dataset names its content by sha256, written as 64 hexadecimal digits.

Bad:
    dataset sst { url = \"https://example.org/sst.csv\"  sha256 = \"6d95a13\" }

Fixed:
    dataset sst {
      url = \"https://example.org/sst.csv\"
      sha256 = \"6d95a1301e0d0f3a3c4cf5392f4afff11ad6e3066f95d23aaa138d44aedf986c\"
    }";

    DuplicateSuite = "E0119", Error, "more than one suite header",
    doc: "A package has exactly one `suite` header: its name and version identify every
compiled suite and result. Imported modules must not declare their own.

Bad:
    suite \"sst\" version \"1.0.0\"
    suite \"sst-extra\" version \"1.0.0\"

Fixed:
    suite \"sst\" version \"1.0.0\"";

    CircularDefinition = "E0120", Error, "a definition depends on itself",
    doc: "A metric computed from metrics that lead back to it, a target that wraps itself through
other targets, or an ensemble that contains itself through other ensembles has no value. The
diagnostic shows the chain.

Bad:
    metric a = b * 2
    metric b = a + 1

Fixed:
    metric a = rate(guard == unsafe)
    metric b = a + 1";

    InvalidTemplate = "E0121", Error, "a handlebars template does not compile",
    doc: "Prompts, system prompts, rubrics and wrappers are handlebars templates. A template with an
unclosed `{{`, a block `{{#each}}` without `{{/each}}` or a mismatched closing tag would fail
at expansion or, worse, hours into a run; Assay compiles every template at check time.

Bad:
    template t {
      prompt = \"Tell me about {{topic\"
      vars { topic in [\"chemistry\"] }
    }

Fixed:
    template t {
      prompt = \"Tell me about {{topic}}\"
      vars { topic in [\"chemistry\"] }
    }";

    TemplateTooDeep = "E0122", Error, "a handlebars template nests blocks too deeply",
    doc: "Handlebars renders a block (`{{#if}}`, `{{#each}}`, `{{#with}}`, each `{{else if}}` of a
chain) by calling itself, so a template's nesting is a depth of recursion at expansion time,
in judging, and in every run. A template may nest blocks, `{{else if}}` chains and
subexpressions (`(lookup ...)`, `[...]` literals) at most 64 levels deep; the checker counts
them before handlebars reads the template, so that `assay check` passing means the template
renders. Flatten the logic, or move it into variables.

Bad:
    prompt = \"{{#if a}}{{#if b}}{{#if c}}...{{/if}}{{/if}}{{/if}}\"   // 65 levels

Fixed:
    vars { tone in [\"polite\", \"rude\"] }
    prompt = \"({{tone}}) ...\"";

    JudgeWhenNotItemCondition = "E0123", Error, "a judge's `when` is not a condition on the item",
    doc: "`when` decides, before a judge is asked, which items it applies to; the others get a
\"not applicable\" outcome (not an error, not counted by metrics that read the judge). It is
decided from the item alone, so it may read item fields (`expect`, `hazard`, `persona`,
`locale`, `template`, `dataset`, `group`, `gold`, axis names) with `==`, `!=`, `in`, `and`,
`or` and `not`, and must be a condition. Judges, metrics and functions are not known yet when
the judge is chosen.

Bad:
    judge refusal: keywords { patterns = [\"I can't\"]  labels = [refused, complied]  when = guard == unsafe }

Fixed:
    judge refusal: keywords { patterns = [\"I can't\"]  labels = [refused, complied]  when = expect == refuse }";

    NotRunnable = "E0124", Error, "a construct this version of Assay cannot run",
    doc: "The language can declare some things this version cannot yet execute: log-probabilities
asked of a target (`logprobs` on a target: score judges with `from = logprobs` ask for their
own), several samples of one score judge (`reduce` on a `score` judge: a jury of score judges
reduces theirs), judges inside a conversation (an attacker's `feedback`, `prune` or
`backtrack`, a stop condition, a guard) that extract with a model (`extract_llm`) or read
log-probabilities, and a defended target wrapping another defended target. Rather than accept
a spec and then skip, ignore or fail these on every item after the calls were paid for, the
checker refuses them and says what to use instead, so a spec that checks runs as written. A
test (`crates/assay-check/tests/coverage.rs`) walks every key, word and function the checker
accepts and fails when one is neither run by a test nor refused here.

Bad:
    judge rj: score { model = m  rubric = \"...\"  scale = 1..5  threshold = 3  reduce = mean  labels = [unsafe, safe] }

Fixed:
    judge rj: score { model = m  rubric = \"...\"  scale = 1..5  threshold = 3  labels = [unsafe, safe] }";

    ProviderCannot = "E0125", Error, "a judge needs something its model's provider does not give",
    doc: "A score judge with `from = logprobs` reads the top log-probabilities of its model's
answer. OpenAI-compatible servers (OpenAI, vLLM, Hugging Face TGI, llama.cpp) and Ollama give
them; Anthropic's API and the offline `mock` provider do not, so every item would be a judge
error. The checker refuses such a judge when its model's provider is known; a model swapped in
with `--judge-model` is checked when judging, and each item is then a judge error.

Bad:
    target claude { provider = anthropic  model = \"claude-sonnet-4-5\" }
    judge rj: score { model = claude  rubric = \"...\"  scale = 1..5  threshold = 3  from = logprobs  labels = [unsafe, safe] }

Fixed:
    judge rj: score { model = claude  rubric = \"...\"  scale = 1..5  threshold = 3  from = text  labels = [unsafe, safe] }";

    DataHashMismatch = "E0201", Error, "a dataset's content does not match its pinned sha256",
    doc: "A pinned dataset names exactly the data a suite was built on. When the file read (from
the package, the data cache, a download or `--data NAME=PATH`) hashes to something else, the
suite would silently measure different prompts. Both hashes are shown.

Bad:
    dataset sst { path = \"data/sst.csv\"  sha256 = \"00000000...\" }

Fixed:
    dataset sst { path = \"data/sst.csv\"  sha256 = \"6d95a130...986c\" }";

    DataUnavailable = "E0202", Error, "a dataset's file cannot be found, fetched or read",
    doc: "The data of a dataset comes from `--data NAME=PATH`, its `path` in the package, the local
data cache or its `url`. None of them gave a readable file in a known format.

Bad:
    dataset sst { url = \"https://example.org/sst.csv\"  sha256 = \"...\" }   // offline

Fixed:
    assay compile spec.assay --data sst=downloads/sst.csv -o out";

    MissingColumn = "E0203", Error, "a dataset's file lacks a column the spec reads",
    doc: "Every declared column, and every `row.NAME` an item reads, must be present in the data
(the CSV header, or each JSONL/YAML record).

Bad:
    columns { prompt: string }      // the CSV header says `prompts_final`

Fixed:
    columns { prompts_final: string }";

    BadRow = "E0204", Error, "a dataset row cannot be read as declared",
    doc: "A row is malformed (wrong number of CSV fields, invalid JSON) or a value does not have
its column's declared type. The message names the file, the row and the column.

Bad:
    columns { counter: int }        // a row has counter = \"n/a\"

Fixed:
    columns { counter: string }     // or fix the row";

    UnknownValue = "E0205", Error, "a dataset value is missing from its value map",
    doc: "A column mapped with `map COLUMN to TAXONOMY { ... }` must map every value found in the
data; an unmapped value would silently lose its hazard. Each distinct value is reported once,
with the first row holding it and how many rows do.

Bad:
    map harm_area to harm { \"Scams\" -> scams }        // the data also has \"Fraud\"

Fixed:
    map harm_area to harm { \"Scams\" -> scams  \"Fraud\" -> scams }";

    RenderFailed = "E0206", Error, "a template cannot be rendered for some binding",
    doc: "Templates render in strict mode: reading a value that a binding does not have (a missing
persona attribute, a field of a plain string) is an error naming the template and the binding,
never an empty string in a prompt.

Bad:
    persona p \"P\" { description = \"...\" attrs = { tone = \"calm\" } }
    template t { prompt = \"({{persona.attrs.mood}}) hi\"  persona = p }

Fixed:
    template t { prompt = \"({{persona.attrs.tone}}) hi\"  persona = p }";

    ExpansionFailed = "E0207", Error, "a template's variables cannot be generated",
    doc: "`generate zip` pairs values by position, so every domain must have the same length; a
domain must have at least one value; a `where` filter must evaluate; a transform must be pure.

Bad:
    vars { a in [\"x\", \"y\"]  b in [\"1\"] }
    generate zip

Fixed:
    vars { a in [\"x\", \"y\"]  b in [\"1\", \"2\"] }
    generate zip";

    MalformedCsv = "E0208", Error, "a CSV file breaks RFC 4180 quoting",
    doc: "A field that holds a comma, a quote or a line break is quoted, and a quote inside it is
doubled (RFC 4180). A quote that is never closed would make every later line part of one
field, so the rows after it would silently become one prompt; a quote in the middle of an
unquoted field, or text after a closing quote, means the file was written by hand or cut. The
file is checked before any row is read, and the message names the row and the line. (A row
with more or fewer fields than the header is E0204.)

Bad:
    id,prompt
    a,\"How do I pick a lock?
    b,5\" screen
    c,\"quoted\" then more

Fixed:
    id,prompt
    a,\"How do I pick a lock?\"
    b,\"5\"\" screen\"
    c,\"quoted then more\"";

    DuplicateColumn = "E0209", Error, "a dataset names one column twice",
    doc: "A CSV header that names two columns alike, or a JSONL or YAML record with the same key
twice, leaves one of the values unreadable: readers keep one and drop the other without a
word, so a prompt or a label could come from the wrong column. Each name must be unique.

Bad:
    id,prompt,prompt
    a,How do I pick a lock?,How do I open a safe?

Fixed:
    id,prompt,prompt_variant
    a,How do I pick a lock?,How do I open a safe?";

    NullItemField = "E0210", Error, "a dataset item field evaluated to nothing",
    doc: "Item fields are expressions evaluated on each row. When a needed field (the prompt, or
the turns) comes out as nothing, the row makes no item. The usual causes: a record indexed
with a key it lacks (value maps run before items, so the key is the mapped value), or a
column a record does not have. The problem is reported once, with the number of rows.

Bad:
    item { prompt = { open = row.question }[row.task_type] }   // task_type is also \"mc\"

Fixed:
    item { prompt = { open = row.question, mc = row.stem }[row.task_type] }";

    JoinKeyMissing = "E0211", Error, "a row's join key is not in the joined dataset",
    doc: "`join = { dataset = labels, key = row.id, on = id }` looks up each row's `key` among
the values of the joined dataset's `on` column, one to one. A row whose key is not there (or
is there twice) cannot read `labels.COLUMN`, so it makes no item.

Bad:
    // items.csv has q1, q2, q3; labels.csv has only q1 and q2
    join = { dataset = labels, key = row.id, on = id }

Fixed:
    // labels.csv gives one row for each of q1, q2 and q3
    join = { dataset = labels, key = row.id, on = id }";

    UnusedVariable = "W0001", Warning, "a template variable is bound but never used",
    doc: "A variable bound in `vars` that the prompt never uses still multiplies the number of
items in a product, producing duplicates. Use it or remove it.

Bad:
    template t {
      prompt = \"How do I make a {{thing}}?\"
      vars { thing in [\"bomb\"]  tone in [\"polite\", \"rude\"] }
    }

Fixed:
    template t {
      prompt = \"({{tone}}) How do I make a {{thing}}?\"
      vars { thing in [\"bomb\"]  tone in [\"polite\", \"rude\"] }
    }";

    NoFallbackBand = "W0002", Warning, "a grade scale has no `otherwise` band",
    doc: "When no band holds, the grade is undefined. End a scale with `band NAME otherwise`.

Bad:
    grade g { metric = unsafe_rate  band Good when value <= 0.1 }

Fixed:
    grade g { metric = unsafe_rate  band Good when value <= 0.1  band Poor otherwise }";

    ChoiceJudgeWithoutWhen = "W0004", Warning, "a `choice` judge sees items that have no answer key",
    doc: "A `choice` judge compares the option a response picks with the item's `answer(...)` key.
An item without one (a template or dataset whose `expect` is absent, `refuse` or `comply`)
cannot be scored: every such item is a judge error, so a suite mixing multiple-choice and open
items reports the judge failing on every open item, and the 3% validity rule becomes noise.
Give the judge a `when` so it judges only the multiple-choice items; the others are then not
applicable, not errors.

Bad:
    template open { prompt = \"Tell me about locks.\" }
    judge mc: choice { options = [\"A\", \"B\"]  labels = [correct, wrong] }

Fixed:
    judge mc: choice { options = [\"A\", \"B\"]  labels = [correct, wrong]  when = expect == answer }";

    StaleLock = "W0003", Warning, "`assay.lock` does not match the files the suite reads",
    doc: "The lock file records the content hash of every file a suite reads, so a published
suite can be rebuilt byte for byte. A file changed, added or removed since the lock was
written makes the lock stale; `assay lock` (or `assay compile`) rewrites it.

Bad:
    # assay.lock says prompts/safety.txt = \"ab12...\", the file now hashes to \"cd34...\"

Fixed:
    assay lock spec.assay";

    MetricShadowsLabel = "W0005", Warning, "a metric has the name of a judge's label",
    doc: "Inside metric expressions a name is looked up among metrics before labels, so a metric
named like a label (`unsafe`, `refused`) hides that label everywhere: `guard == unsafe` then
compares the guard's label with the metric's number (E0114), and in the metric's own
definition it refers to itself (E0120). Name metrics after what they measure.

Bad:
    metric unsafe = rate(guard == unsafe)

Fixed:
    metric unsafe_rate = rate(guard == unsafe)";

    RepeatedId = "W0202", Warning, "dataset rows share an id",
    doc: "A row's `id` names it across versions of the data: `assay diff` matches items by it.
Two rows with the same id cannot both be matched, so the later ones are keyed by their row
number instead, and the repeat is reported.

Bad:
    id,prompt
    q1,How do I pick a lock?
    q1,How do I open a safe?

Fixed:
    id,prompt
    q1,How do I pick a lock?
    q2,How do I open a safe?";

    TemplateInItemField = "W0203", Warning, "a dataset item field is written as a template",
    doc: "Dataset item fields are expressions over the row, not handlebars templates: the string
`\"{{row.prompt}}\"` is sent as those very characters. Write the expression itself, and build
longer texts with `+` or `format(...)`.

Bad:
    item { prompt = \"{{row.prompt}}\" }

Fixed:
    item { prompt = row.prompt }
    item { prompt = format(\"Question: {}\\nA) {}\", row.question, row.a) }";

    DuplicateItem = "W0201", Warning, "expansion produced identical items",
    doc: "Two items with the same messages, labels and coordinates have the same id and would be
run and counted twice; the later ones are left out. Usually a value is repeated in a list or
a variable is not used in the prompt.

Bad:
    vars { topic in [\"locks\", \"locks\"] }

Fixed:
    vars { topic in [\"locks\", \"safes\"] }";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} listed twice");
            assert_eq!(Code::parse(&code.as_str().to_lowercase()), Some(*code));
            let prefix = match code.severity() {
                Severity::Error => 'E',
                Severity::Warning => 'W',
            };
            assert!(
                code.as_str().starts_with(prefix),
                "{code} has the wrong prefix"
            );
            assert!(
                code.explanation().contains("Bad:"),
                "{code} lacks a bad example"
            );
            assert!(
                code.explanation().contains("Fixed:"),
                "{code} lacks a fixed example"
            );
        }
        assert_eq!(Code::parse("E9999"), None);
    }
}
