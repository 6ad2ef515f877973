//! Expressions: precedence climbing over the flat `prefix* primary postfix* (infix ...)*`
//! sequence the grammar produces.

use super::{Lowerer, inner};
use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::parser::Rule;
use crate::span::Span;
use pest::iterators::Pair;

/// An expression tree may be this tall: each operator, prefix, index, call, list and record
/// adds a level, and so does each term of a left-associative chain (`a + b + c` is
/// `(a + b) + c`, as tall as it is long). The checker, the formatter, the language server and
/// scoring all walk expressions recursively, and so does dropping one, so a taller tree is
/// refused here, before it is built, with E0009. Lowering's own recursion is bounded the same
/// way (`depth`), and brackets were bounded before pest ran (`parser::MAX_NESTING`).
pub const MAX_EXPR_DEPTH: usize = 128;

impl Lowerer {
    pub(super) fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        self.sized_expr(pair).0
    }

    /// An expression and the height of its tree (a leaf is 1), at most [`MAX_EXPR_DEPTH`].
    fn sized_expr(&mut self, pair: Pair<'_, Rule>) -> (Expr, usize) {
        let span = self.span(&pair);
        let items: Vec<Pair<'_, Rule>> = inner(pair).collect();
        let mut pos = 0;
        self.depth += 1;
        let e = if self.depth > MAX_EXPR_DEPTH {
            self.too_deep(span);
            (placeholder(span), 1)
        } else {
            self.climb(&items, &mut pos, 0)
        };
        self.depth -= 1;
        e
    }

    /// Reports an expression over the limits, once per declaration; the declaration is then
    /// dropped (see [`Lowerer::decl`]), so nothing reads the truncated tree.
    fn too_deep(&mut self, span: Span) {
        if self.too_deep {
            return;
        }
        self.too_deep = true;
        self.error(
            Diagnostic::new(Code::TooDeep, span, "this expression nests too deeply")
                .label(format!("level {} starts here", MAX_EXPR_DEPTH + 1))
                .help(format!(
                    "an expression may nest at most {MAX_EXPR_DEPTH} levels (each term of a chain like `a + b + c` is one); compute it in named steps"
                )),
        );
    }

    /// Precedence climbing over the flat `prefix* primary postfix* (infix ...)*` sequence. A
    /// chain of operators of one precedence is folded here in a loop, so the height of the tree
    /// is counted as it grows and the fold stops at the limit.
    pub(super) fn climb(
        &mut self,
        items: &[Pair<'_, Rule>],
        pos: &mut usize,
        min_prec: u8,
    ) -> (Expr, usize) {
        let (mut lhs, mut height) = self.unary(items, pos);
        while let Some(op) = items.get(*pos).and_then(|p| binary_op(p.as_rule())) {
            let prec = precedence(op);
            if prec < min_prec {
                break;
            }
            let op_span = self.span(&items[*pos]);
            *pos += 1;
            let next = if op == BinaryOp::Pow { prec } else { prec + 1 };
            self.depth += 1;
            if self.depth > MAX_EXPR_DEPTH {
                self.depth -= 1;
                self.too_deep(op_span);
                *pos = items.len();
                break;
            }
            let (rhs, rhs_height) = self.climb(items, pos, next);
            self.depth -= 1;
            let joined = 1 + height.max(rhs_height);
            if joined > MAX_EXPR_DEPTH {
                self.too_deep(op_span);
                *pos = items.len();
                break;
            }
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
            height = joined;
        }
        (lhs, height)
    }

    pub(super) fn unary(&mut self, items: &[Pair<'_, Rule>], pos: &mut usize) -> (Expr, usize) {
        let mut prefixes = Vec::new();
        while let Some(p) = items.get(*pos) {
            match p.as_rule() {
                Rule::op_neg => prefixes.push((UnaryOp::Neg, self.span(p))),
                // `not` binds looser than comparisons: `not guard == safe` is
                // `not (guard == safe)`, and `not a and b` is `(not a) and b`.
                Rule::op_not => {
                    let not_span = self.span(p);
                    *pos += 1;
                    let operand = self.operand_of_not(items, pos, not_span);
                    return self.wrap(prefixes, operand);
                }
                _ => break,
            }
            *pos += 1;
        }
        let Some(primary) = items.get(*pos).cloned() else {
            let span = prefixes.last().map(|(_, s)| *s).unwrap_or_default();
            return (placeholder(span), 1);
        };
        *pos += 1;
        let (mut e, mut height) = self.primary_sized(primary);
        // `a[0][1]...` is folded in a loop too: counted like an operator chain.
        while let Some(p) = items.get(*pos).filter(|p| p.as_rule() == Rule::index) {
            let index_span = self.span(p);
            let span = e.span.to(index_span);
            let index = inner(p.clone()).next().map(|x| self.sized_expr(x));
            *pos += 1;
            if let Some((index, index_height)) = index {
                let joined = 1 + height.max(index_height);
                if joined > MAX_EXPR_DEPTH {
                    self.too_deep(index_span);
                    *pos = items.len();
                    break;
                }
                e = Expr {
                    kind: ExprKind::Index {
                        base: Box::new(e),
                        index: Box::new(index),
                    },
                    span,
                };
                height = joined;
            }
        }
        self.wrap(prefixes, (e, height))
    }

    /// The operand of a `not`: an expression of comparison precedence.
    fn operand_of_not(
        &mut self,
        items: &[Pair<'_, Rule>],
        pos: &mut usize,
        not_span: Span,
    ) -> (Expr, usize) {
        self.depth += 1;
        let (operand, height) = if self.depth > MAX_EXPR_DEPTH {
            self.too_deep(not_span);
            *pos = items.len();
            (placeholder(not_span), 1)
        } else {
            self.climb(items, pos, COMPARISON)
        };
        self.depth -= 1;
        let span = not_span.to(operand.span);
        let e = Expr {
            kind: ExprKind::Unary {
                op: UnaryOp::Not,
                operand: Box::new(operand),
            },
            span,
        };
        (e, height + 1)
    }

    /// Applies prefix operators, innermost last; each is a level.
    fn wrap(
        &mut self,
        prefixes: Vec<(UnaryOp, Span)>,
        (mut e, height): (Expr, usize),
    ) -> (Expr, usize) {
        if height + prefixes.len() > MAX_EXPR_DEPTH {
            // The first prefix past the limit, counting from the operand outwards.
            let over = prefixes.len() + height - MAX_EXPR_DEPTH;
            let span = prefixes
                .get(over.saturating_sub(1))
                .map_or(e.span, |(_, s)| *s);
            self.too_deep(span);
            return (e, height);
        }
        let height = height + prefixes.len();
        for (op, span) in prefixes.into_iter().rev() {
            let span = span.to(e.span);
            e = Expr {
                kind: ExprKind::Unary {
                    op,
                    operand: Box::new(e),
                },
                span,
            };
        }
        (e, height)
    }

    fn primary_sized(&mut self, pair: Pair<'_, Rule>) -> (Expr, usize) {
        let span = self.span(&pair);
        // Children come back at most `MAX_EXPR_DEPTH` tall, so this node is at most one more.
        let mut children = 0;
        let kind = match pair.as_rule() {
            Rule::expr => return self.sized_expr(pair),
            Rule::string => ExprKind::Str(self.string(pair).value),
            Rule::number => ExprKind::Number(pair.as_str().parse().unwrap_or(f64::NAN)),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::path => ExprKind::Path(inner(pair).map(|p| self.ident(p)).collect()),
            Rule::list => ExprKind::List(
                inner(pair)
                    .map(|p| {
                        let (e, h) = self.sized_expr(p);
                        children = children.max(h);
                        e
                    })
                    .collect(),
            ),
            Rule::record => {
                let props = self.properties(pair);
                children = props.iter().map(|p| height(&p.value)).max().unwrap_or(0);
                ExprKind::Record(props)
            }
            Rule::range => {
                let mut nums = inner(pair).map(|p| p.as_str().parse::<f64>().unwrap_or(f64::NAN));
                ExprKind::Range {
                    start: nums.next().unwrap_or(0.0),
                    end: nums.next().unwrap_or(0.0),
                }
            }
            Rule::call => {
                let mut parts = inner(pair);
                let callee = self.ident(parts.next().expect("call starts with a name"));
                let args = parts
                    .map(|arg| {
                        let mut a = inner(arg).collect::<Vec<_>>();
                        let (value, h) = self.sized_expr(a.pop().expect("arg has a value"));
                        children = children.max(h);
                        let name = a.pop().map(|n| self.ident(n));
                        Arg { name, value }
                    })
                    .collect();
                ExprKind::Call { callee, args }
            }
            _ => ExprKind::Number(0.0),
        };
        if children + 1 > MAX_EXPR_DEPTH {
            self.too_deep(span);
            return (placeholder(span), 1);
        }
        (Expr { kind, span }, children + 1)
    }
}

/// What stands for an expression that could not be lowered (its error is reported).
fn placeholder(span: Span) -> Expr {
    Expr {
        kind: ExprKind::Number(0.0),
        span,
    }
}

/// The height of a lowered expression, without recursion (a leaf is 1).
fn height(e: &Expr) -> usize {
    let mut tallest = 0;
    let mut pending = vec![(e, 1)];
    while let Some((e, level)) = pending.pop() {
        tallest = tallest.max(level);
        let next = level + 1;
        match &e.kind {
            ExprKind::List(items) => pending.extend(items.iter().map(|i| (i, next))),
            ExprKind::Record(props) => pending.extend(props.iter().map(|p| (&p.value, next))),
            ExprKind::Call { args, .. } => pending.extend(args.iter().map(|a| (&a.value, next))),
            ExprKind::Unary { operand, .. } => pending.push((operand, next)),
            ExprKind::Binary { lhs, rhs, .. } => pending.extend([(&**lhs, next), (&**rhs, next)]),
            ExprKind::Index { base, index } => {
                pending.extend([(&**base, next), (&**index, next)]);
            }
            ExprKind::Str(_)
            | ExprKind::Number(_)
            | ExprKind::Bool(_)
            | ExprKind::Path(_)
            | ExprKind::Range { .. } => {}
        }
    }
    tallest
}

fn binary_op(rule: Rule) -> Option<BinaryOp> {
    Some(match rule {
        Rule::op_given => BinaryOp::Given,
        Rule::op_or => BinaryOp::Or,
        Rule::op_and => BinaryOp::And,
        Rule::op_eq => BinaryOp::Eq,
        Rule::op_ne => BinaryOp::Ne,
        Rule::op_lt => BinaryOp::Lt,
        Rule::op_le => BinaryOp::Le,
        Rule::op_gt => BinaryOp::Gt,
        Rule::op_ge => BinaryOp::Ge,
        Rule::op_in => BinaryOp::In,
        Rule::op_add => BinaryOp::Add,
        Rule::op_sub => BinaryOp::Sub,
        Rule::op_mul => BinaryOp::Mul,
        Rule::op_div => BinaryOp::Div,
        Rule::op_pow => BinaryOp::Pow,
        _ => return None,
    })
}

/// The precedence of `==`, `<`, `in` and the other comparisons.
const COMPARISON: u8 = 3;

fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Given => 0,
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq
        | BinaryOp::Ne
        | BinaryOp::Lt
        | BinaryOp::Le
        | BinaryOp::Gt
        | BinaryOp::Ge
        | BinaryOp::In => COMPARISON,
        BinaryOp::Add | BinaryOp::Sub => 4,
        BinaryOp::Mul | BinaryOp::Div => 5,
        BinaryOp::Pow => 6,
    }
}
