//! Expressions: precedence climbing over the flat `prefix* primary postfix* (infix ...)*`
//! sequence the grammar produces.

use super::{Lowerer, inner};
use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::parser::Rule;
use crate::span::Span;
use pest::iterators::Pair;

/// Expressions may nest this deep (prefix chains and `^` chains included).
const MAX_EXPR_DEPTH: usize = 128;

impl Lowerer {
    pub(super) fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let items: Vec<Pair<'_, Rule>> = inner(pair).collect();
        let mut pos = 0;
        self.depth += 1;
        let e = if self.depth > MAX_EXPR_DEPTH {
            self.error(
                Diagnostic::new(Code::SyntaxError, span, "expression nests too deeply")
                    .label("too deep")
                    .help(format!(
                        "expressions may nest at most {MAX_EXPR_DEPTH} levels"
                    )),
            );
            Expr {
                kind: ExprKind::Number(0.0),
                span,
            }
        } else {
            self.climb(&items, &mut pos, 0)
        };
        self.depth -= 1;
        e
    }

    /// Precedence climbing over the flat `prefix* primary postfix* (infix ...)*` sequence.
    pub(super) fn climb(
        &mut self,
        items: &[Pair<'_, Rule>],
        pos: &mut usize,
        min_prec: u8,
    ) -> Expr {
        let mut lhs = self.unary(items, pos);
        while let Some(op) = items.get(*pos).and_then(|p| binary_op(p.as_rule())) {
            let prec = precedence(op);
            if prec < min_prec {
                break;
            }
            *pos += 1;
            let next = if op == BinaryOp::Pow { prec } else { prec + 1 };
            self.depth += 1;
            let rhs = if self.depth > MAX_EXPR_DEPTH {
                self.depth -= 1;
                self.error(
                    Diagnostic::new(
                        Code::SyntaxError,
                        self.span(&items[*pos - 1]),
                        "expression nests too deeply",
                    )
                    .label("too deep")
                    .help(format!(
                        "expressions may nest at most {MAX_EXPR_DEPTH} levels"
                    )),
                );
                *pos = items.len();
                break;
            } else {
                self.climb(items, pos, next)
            };
            self.depth -= 1;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
        lhs
    }

    pub(super) fn unary(&mut self, items: &[Pair<'_, Rule>], pos: &mut usize) -> Expr {
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
        if prefixes.len() > MAX_EXPR_DEPTH {
            let span = prefixes[0].1;
            self.error(
                Diagnostic::new(
                    Code::SyntaxError,
                    span,
                    "too many prefix operators in a row",
                )
                .label("here"),
            );
            prefixes.truncate(1);
        }
        let Some(primary) = items.get(*pos).cloned() else {
            let span = prefixes.last().map(|(_, s)| *s).unwrap_or_default();
            return Expr {
                kind: ExprKind::Number(0.0),
                span,
            };
        };
        *pos += 1;
        let mut e = self.primary(primary);
        while let Some(p) = items.get(*pos).filter(|p| p.as_rule() == Rule::index) {
            let span = e.span.to(self.span(p));
            let index = inner(p.clone()).next().map(|x| self.expr(x));
            *pos += 1;
            if let Some(index) = index {
                e = Expr {
                    kind: ExprKind::Index {
                        base: Box::new(e),
                        index: Box::new(index),
                    },
                    span,
                };
            }
        }
        self.wrap(prefixes, e)
    }

    /// The operand of a `not`: an expression of comparison precedence.
    fn operand_of_not(
        &mut self,
        items: &[Pair<'_, Rule>],
        pos: &mut usize,
        not_span: Span,
    ) -> Expr {
        self.depth += 1;
        let operand = if self.depth > MAX_EXPR_DEPTH {
            self.error(
                Diagnostic::new(Code::SyntaxError, not_span, "expression nests too deeply")
                    .label("too deep")
                    .help(format!(
                        "expressions may nest at most {MAX_EXPR_DEPTH} levels"
                    )),
            );
            *pos = items.len();
            Expr {
                kind: ExprKind::Number(0.0),
                span: not_span,
            }
        } else {
            self.climb(items, pos, COMPARISON)
        };
        self.depth -= 1;
        let span = not_span.to(operand.span);
        Expr {
            kind: ExprKind::Unary {
                op: UnaryOp::Not,
                operand: Box::new(operand),
            },
            span,
        }
    }

    /// Applies prefix operators, innermost last.
    fn wrap(&mut self, prefixes: Vec<(UnaryOp, Span)>, mut e: Expr) -> Expr {
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
        e
    }

    pub(super) fn primary(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::expr => return self.expr(pair),
            Rule::string => ExprKind::Str(self.string(pair).value),
            Rule::number => ExprKind::Number(pair.as_str().parse().unwrap_or(f64::NAN)),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::path => ExprKind::Path(inner(pair).map(|p| self.ident(p)).collect()),
            Rule::list => ExprKind::List(inner(pair).map(|p| self.expr(p)).collect()),
            Rule::record => ExprKind::Record(self.properties(pair)),
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
                        let value = self.expr(a.pop().expect("arg has a value"));
                        let name = a.pop().map(|n| self.ident(n));
                        Arg { name, value }
                    })
                    .collect();
                ExprKind::Call { callee, args }
            }
            _ => ExprKind::Number(0.0),
        };
        Expr { kind, span }
    }
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
