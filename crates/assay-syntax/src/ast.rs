//! The typed syntax tree. Every node carries its [`Span`]; property bags are already validated
//! against their block's schema (known keys, each once, values of the right shape), so later
//! stages read them with typed accessors and never see an unknown key.

use crate::span::{FileId, Span};
use serde::Serialize;

/// One parsed source file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Module {
    pub file: FileId,
    pub decls: Vec<Decl>,
    /// Every comment, in source order, for the formatter and hover docs.
    pub comments: Vec<Comment>,
    /// Names of declarations that failed to parse. Their syntax error is reported; the checker
    /// treats the names as defined so that one typo does not cascade into "undefined" errors
    /// at every use.
    pub broken: Vec<Ident>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CommentKind {
    Line,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub kind: CommentKind,
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Property {
    pub key: Ident,
    pub value: Expr,
    pub span: Span,
}

/// The properties of one block, in source order, each key at most once and each known to the
/// block's schema (see `schema.rs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Props(pub Vec<Property>);

impl Props {
    pub fn get(&self, key: &str) -> Option<&Property> {
        self.0.iter().find(|p| p.key.name == key)
    }

    pub fn value(&self, key: &str) -> Option<&Expr> {
        self.get(key).map(|p| &p.value)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.value(key).and_then(Expr::as_str)
    }

    pub fn number(&self, key: &str) -> Option<f64> {
        self.value(key).and_then(Expr::as_number)
    }

    /// A single bare name, e.g. `provider = openai`.
    pub fn name(&self, key: &str) -> Option<&Ident> {
        self.value(key).and_then(Expr::as_name)
    }

    /// A list of bare names, e.g. `labels = [safe, unsafe]`.
    pub fn names(&self, key: &str) -> Vec<&Ident> {
        match self.value(key).map(|e| &e.kind) {
            Some(ExprKind::List(items)) => items.iter().filter_map(Expr::as_name).collect(),
            _ => Vec::new(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Property> {
        self.0.iter()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Decl {
    Suite(Suite),
    Use(Use),
    Taxonomy(Taxonomy),
    Mapping(Mapping),
    Persona(Persona),
    Template(Template),
    Dataset(Dataset),
    Axis(Axis),
    Target(Target),
    Program(Program),
    Judge(Judge),
    Metric(Metric),
    Grade(Grade),
    Standard(Standard),
    Report(Report),
}

impl Decl {
    /// The declared name, for declarations that define one in the shared namespace.
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Decl::Suite(_) | Decl::Use(_) | Decl::Report(_) => None,
            Decl::Taxonomy(d) => Some(&d.name),
            Decl::Mapping(d) => Some(&d.name),
            Decl::Persona(d) => Some(&d.name),
            Decl::Template(d) => Some(&d.name),
            Decl::Dataset(d) => Some(&d.name),
            Decl::Axis(d) => Some(&d.name),
            Decl::Target(d) => Some(&d.name),
            Decl::Program(d) => Some(&d.name),
            Decl::Judge(d) => Some(&d.name),
            Decl::Metric(d) => Some(&d.name),
            Decl::Grade(d) => Some(&d.name),
            Decl::Standard(d) => Some(&d.name),
        }
    }

    /// What the declaration is, in words: "taxonomy", "judge", ...
    pub fn kind_name(&self) -> &'static str {
        match self {
            Decl::Suite(_) => "suite",
            Decl::Use(_) => "use",
            Decl::Taxonomy(_) => "taxonomy",
            Decl::Mapping(_) => "mapping",
            Decl::Persona(_) => "persona",
            Decl::Template(_) => "template",
            Decl::Dataset(_) => "dataset",
            Decl::Axis(_) => "axis",
            Decl::Target(_) => "target",
            Decl::Program(_) => "program",
            Decl::Judge(_) => "judge",
            Decl::Metric(_) => "metric",
            Decl::Grade(_) => "grade",
            Decl::Standard(_) => "standard",
            Decl::Report(_) => "report",
        }
    }
}

// ---- 1. suite header and imports ------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suite {
    pub name: StrLit,
    pub version: Option<StrLit>,
    pub props: Props,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ImportSource {
    /// `std::a::b`: segments after `std`.
    Std(Vec<Ident>),
    /// `pkg::a::b`: a dependency named in assay.toml, then a module path inside it.
    Package { package: Ident, path: Vec<Ident> },
    /// `"relative/file.assay"`
    File(StrLit),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Use {
    pub source: ImportSource,
    pub source_span: Span,
    /// `use x { a, b }` imports only these names; empty imports every name.
    pub names: Vec<Ident>,
    pub span: Span,
}

// ---- 2. taxonomies and mappings -------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Taxonomy {
    pub name: Ident,
    pub title: Option<StrLit>,
    pub props: Props,
    pub categories: Vec<Category>,
    pub span: Span,
}

impl Taxonomy {
    /// Every category, depth first, with its parent's code.
    pub fn walk(&self) -> Vec<(&Category, Option<&Category>)> {
        fn go<'a>(
            cats: &'a [Category],
            parent: Option<&'a Category>,
            out: &mut Vec<(&'a Category, Option<&'a Category>)>,
        ) {
            for c in cats {
                out.push((c, parent));
                go(&c.children, Some(c), out);
            }
        }
        let mut out = Vec::new();
        go(&self.categories, None, &mut out);
        out
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Category {
    pub code: Ident,
    pub title: StrLit,
    pub props: Props,
    pub children: Vec<Category>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mapping {
    pub name: Ident,
    pub from: Ident,
    pub to: Ident,
    pub rules: Vec<MappingRule>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MappingRule {
    pub source: Ident,
    /// Empty for `-> none`: mapped on purpose to nothing.
    pub targets: Vec<Ident>,
    pub span: Span,
}

// ---- 3. personas ----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Persona {
    pub name: Ident,
    pub title: Option<StrLit>,
    pub props: Props,
    pub span: Span,
}

// ---- 4. templates ---------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Template {
    pub name: Ident,
    pub props: Props,
    pub vars: Vec<VarBinding>,
    pub generate: Option<Generate>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VarBinding {
    pub name: Ident,
    /// Inline list, `file(...)`, `dataset.column` or `leaves(taxonomy)`.
    pub domain: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    Product,
    Zip,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Generate {
    pub generator: Generator,
    pub filter: Option<Expr>,
    pub sample: Option<Sample>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub count: u64,
    pub seed: Option<u64>,
    pub span: Span,
}

// ---- 5. datasets ----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dataset {
    pub name: Ident,
    pub props: Props,
    pub columns: Vec<Column>,
    pub value_maps: Vec<ValueMap>,
    /// The `item { ... }` block: how a row becomes an item.
    pub item: Option<Props>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Int,
    Float,
    Bool,
    /// A list of values (a JSON array, a Parquet list).
    List,
    /// A record of named values (a JSON object, a Parquet struct).
    Record,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: StrLit,
    pub ty: ColumnType,
    /// `TYPE?`: a null value is read as null rather than refused.
    pub nullable: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValueMap {
    pub column: StrLit,
    /// `map col to taxonomy { ... }`: the right-hand sides are codes of this taxonomy.
    pub taxonomy: Option<Ident>,
    pub rules: Vec<ValueRule>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValueRule {
    pub from: StrLit,
    pub to: Expr,
    pub span: Span,
}

// ---- 6. axes --------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AxisKind {
    /// Variants are system prompts.
    System,
    /// Variants are transforms of the user turn (`base64`, `wrap("...")`, ...).
    Transform,
    /// Variants are locale tags.
    Locale,
    /// Variants are personas.
    Persona,
    /// Variants are conversation programs (`none` for a single turn).
    Program,
    /// Variants are defenses: records of `system`, `input_guard`, `output_guard`, `rewrite`
    /// and `rewrite_prompt` (`{}` for none).
    Defense,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Axis {
    pub name: Ident,
    pub kind: AxisKind,
    pub variants: Vec<Property>,
    pub span: Span,
}

// ---- 8. targets -----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub name: Ident,
    pub props: Props,
    pub span: Span,
}

// ---- 12b. published reference standards -------------------------------------------------

/// `standard NAME { scale = ... safe = { hazard = fraction ... } }`: the safe fractions a
/// standards body grades a scale against, as it publishes them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Standard {
    pub name: Ident,
    pub props: Props,
    pub span: Span,
}

// ---- 9. conversation programs ---------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Turn {
    pub role: Role,
    pub content: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Program {
    pub name: Ident,
    pub props: Props,
    /// Scripted turns, in order.
    pub turns: Vec<Turn>,
    /// An adaptive attacker loop (PAIR, Crescendo).
    pub attacker: Option<Props>,
    /// Stop conditions, checked after each target turn.
    pub stops: Vec<Expr>,
    pub span: Span,
}

// ---- 10. judges -----------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JudgeKind {
    Keywords,
    Regex,
    Choice,
    Llm,
    Guard,
    Score,
    Ensemble,
    Human,
}

impl JudgeKind {
    pub const ALL: &'static [(&'static str, JudgeKind)] = &[
        ("keywords", JudgeKind::Keywords),
        ("regex", JudgeKind::Regex),
        ("choice", JudgeKind::Choice),
        ("llm", JudgeKind::Llm),
        ("guard", JudgeKind::Guard),
        ("score", JudgeKind::Score),
        ("ensemble", JudgeKind::Ensemble),
        ("human", JudgeKind::Human),
    ];

    pub fn as_str(self) -> &'static str {
        JudgeKind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Judge {
    pub name: Ident,
    pub kind: JudgeKind,
    pub props: Props,
    /// Multi-aspect judges: each aspect is a name with its own label list.
    pub aspects: Vec<Property>,
    pub span: Span,
}

impl Judge {
    /// Each aspect with its label list (a list that is not one of names gives no labels; the
    /// lowering reports it).
    pub fn aspect_labels(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.aspects
            .iter()
            .map(|a| {
                let labels = match &a.value.kind {
                    ExprKind::List(items) => items
                        .iter()
                        .filter_map(|e| e.as_name())
                        .map(|n| n.name.clone())
                        .collect(),
                    _ => Vec::new(),
                };
                (a.key.name.clone(), labels)
            })
            .collect()
    }
}

// ---- 11. metrics ----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metric {
    pub name: Ident,
    pub expr: Expr,
    pub filter: Option<Expr>,
    pub group_by: Vec<Ident>,
    pub props: Props,
    pub span: Span,
}

// ---- 12. grades -----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grade {
    pub name: Ident,
    pub props: Props,
    pub bands: Vec<Band>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Band {
    pub name: StrLit,
    /// `None` for `otherwise`.
    pub condition: Option<Expr>,
    pub span: Span,
}

// ---- 13. reports ----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub name: Option<Ident>,
    pub props: Props,
    pub tables: Vec<Table>,
    pub charts: Vec<Chart>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Table {
    pub metrics: Vec<Ident>,
    pub by: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chart {
    pub kind: Ident,
    pub metric: Ident,
    pub by: Vec<Ident>,
    pub span: Span,
}

// ---- expressions ----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BinaryOp {
    /// `x | condition`: an aggregate's argument read only where the condition holds.
    Given,
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Given => "|",
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Pow => "^",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ExprKind {
    Str(String),
    Number(f64),
    Bool(bool),
    List(Vec<Expr>),
    Record(Vec<Property>),
    /// `a` or `a.b.c`.
    Path(Vec<Ident>),
    Call {
        callee: Ident,
        args: Vec<Arg>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    Range {
        start: f64,
        end: f64,
    },
}

impl Expr {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ExprKind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match &self.kind {
            ExprKind::Number(n) => Some(*n),
            ExprKind::Unary {
                op: UnaryOp::Neg,
                operand,
            } => operand.as_number().map(|n| -n),
            _ => None,
        }
    }

    /// A bare, undotted name.
    pub fn as_name(&self) -> Option<&Ident> {
        match &self.kind {
            ExprKind::Path(segments) if segments.len() == 1 => segments.first(),
            _ => None,
        }
    }

    /// The path argument of a `file("...")` call, with its span.
    pub fn as_file_ref(&self) -> Option<(&str, Span)> {
        match &self.kind {
            ExprKind::Call { callee, args } if callee.name == "file" => match args.as_slice() {
                [Arg { name: None, value }] => value.as_str().map(|s| (s, value.span)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Describes the shape of the value for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            ExprKind::Str(_) => "a string",
            ExprKind::Number(_) => "a number",
            ExprKind::Bool(_) => "a boolean",
            ExprKind::List(_) => "a list",
            ExprKind::Record(_) => "a record",
            ExprKind::Path(p) if p.len() == 1 => "a name",
            ExprKind::Path(_) => "a dotted name",
            ExprKind::Call { .. } => "a function call",
            ExprKind::Unary {
                op: UnaryOp::Neg, ..
            } => "a number",
            ExprKind::Unary { .. } | ExprKind::Binary { .. } => "an expression",
            ExprKind::Index { .. } => "an index expression",
            ExprKind::Range { .. } => "a range",
        }
    }

    /// Visits this expression and every sub-expression, parents first.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match &self.kind {
            ExprKind::List(items) => items.iter().for_each(|e| e.walk(f)),
            ExprKind::Record(props) => props.iter().for_each(|p| p.value.walk(f)),
            ExprKind::Call { args, .. } => args.iter().for_each(|a| a.value.walk(f)),
            ExprKind::Unary { operand, .. } => operand.walk(f),
            ExprKind::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            ExprKind::Index { base, index } => {
                base.walk(f);
                index.walk(f);
            }
            ExprKind::Str(_)
            | ExprKind::Number(_)
            | ExprKind::Bool(_)
            | ExprKind::Path(_)
            | ExprKind::Range { .. } => {}
        }
    }
}
