//! A metric compiled for scoring ([`Plan`]): its aggregates, each with the item-level
//! arguments and filters it reads, under a group-level expression of numbers. A metric that
//! names another metric gets that metric's aggregates inlined, each carrying the other
//! metric's filter as well as its own, so `unsafe_rate = 1 - safe_fraction` is scored as
//! `1 - rate(evaluator == safe)` and keeps Clopper-Pearson intervals.

use crate::aggregate::{AggregateKind, Cell};
use crate::value::{ItemContext, TURN_FUNCTIONS, Value, arithmetic, math, order};
use assay_ir::{MetricExpr, MetricSpec};
use std::collections::BTreeMap;

/// One aggregate call: what it computes, from which item values, over which items.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Aggregate {
    pub kind: AggregateKind,
    pub args: Vec<MetricExpr>,
    /// Every `where` on the way from the scored metric down to this call; all must hold.
    pub filters: Vec<MetricExpr>,
}

/// The group-level expression over aggregate values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outer {
    Number(f64),
    Aggregate(usize),
    Unary(String, Box<Outer>),
    Binary(String, Box<Outer>, Box<Outer>),
    Call(String, Vec<Outer>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub outer: Outer,
    /// Distinct aggregates: `rate(x) / (1 - rate(x))` reads one.
    pub aggregates: Vec<Aggregate>,
}

impl Plan {
    /// Compiles `spec`, inlining the metrics it names from `metrics`. The error says why the
    /// metric cannot be scored (the checker rules these out for specs it accepted).
    pub(crate) fn compile(
        spec: &MetricSpec,
        metrics: &BTreeMap<&str, &MetricSpec>,
    ) -> Result<Plan, String> {
        let mut compiler = Compiler {
            metrics,
            aggregates: Vec::new(),
            inlining: vec![spec.name.clone()],
        };
        let filters: Vec<MetricExpr> = spec.filter.iter().cloned().collect();
        let outer = compiler.outer(&spec.expr, &filters)?;
        if compiler.aggregates.is_empty() {
            return Err("it has no aggregate such as `rate(...)` or `mean(...)`".into());
        }
        Ok(Plan {
            outer,
            aggregates: compiler.aggregates,
        })
    }

    /// The metric's value from its aggregates' values.
    pub(crate) fn eval(&self, aggregate: &dyn Fn(usize) -> f64) -> f64 {
        self.outer.eval(aggregate)
    }

    /// The single proportion aggregate the metric is a monotone function of (`rate(x)`,
    /// `1 - rate(x)`, `100 * accuracy(p, t)`), whose exact interval maps through the
    /// function to the metric's.
    pub(crate) fn proportion(&self) -> Option<usize> {
        match self.aggregates.as_slice() {
            [a] if a.kind.is_proportion() && self.outer.monotone() => Some(0),
            _ => None,
        }
    }

    /// A plain `count`, which has no sampling interval to report.
    pub(crate) fn is_count(&self) -> bool {
        matches!(self.aggregates.as_slice(), [a] if a.kind == AggregateKind::Count)
    }
}

struct Compiler<'m> {
    metrics: &'m BTreeMap<&'m str, &'m MetricSpec>,
    aggregates: Vec<Aggregate>,
    /// The metrics being inlined, outermost first, to report a cycle instead of looping.
    inlining: Vec<String>,
}

impl Compiler<'_> {
    fn outer(&mut self, expr: &MetricExpr, filters: &[MetricExpr]) -> Result<Outer, String> {
        Ok(match expr {
            MetricExpr::Number(n) => Outer::Number(*n),
            MetricExpr::Bool(b) => Outer::Number(if *b { 1.0 } else { 0.0 }),
            MetricExpr::Unary { op, operand } => {
                Outer::Unary(op.clone(), Box::new(self.outer(operand, filters)?))
            }
            MetricExpr::Binary { op, lhs, rhs } => Outer::Binary(
                op.clone(),
                Box::new(self.outer(lhs, filters)?),
                Box::new(self.outer(rhs, filters)?),
            ),
            MetricExpr::Metric(name) => self.inline(name, filters)?,
            MetricExpr::Call { name, args } => match AggregateKind::from_name(name) {
                Some((kind, arities)) => {
                    if !arities.contains(&args.len()) {
                        return Err(format!("`{name}` takes {arities:?} arguments"));
                    }
                    // `rate(x | c)`: the condition joins the aggregate's filters, so the
                    // aggregate reads `x` only among items where `c` holds.
                    let mut filters = filters.to_vec();
                    let args: Vec<MetricExpr> = args
                        .iter()
                        .map(|arg| match arg {
                            MetricExpr::Binary { op, lhs, rhs } if op == "|" => {
                                filters.push((**rhs).clone());
                                (**lhs).clone()
                            }
                            other => other.clone(),
                        })
                        .collect();
                    for arg in &args {
                        item_level(arg)?;
                    }
                    let aggregate = Aggregate {
                        kind,
                        args,
                        filters,
                    };
                    let at = match self.aggregates.iter().position(|a| *a == aggregate) {
                        Some(at) => at,
                        None => {
                            self.aggregates.push(aggregate);
                            self.aggregates.len() - 1
                        }
                    };
                    Outer::Aggregate(at)
                }
                None if TURN_FUNCTIONS.contains(&name.as_str()) => {
                    return Err(format!(
                        "`{name}(...)` is read per item and is used outside any aggregate: wrap \
                         it in one, e.g. `rate({name}(...))`"
                    ));
                }
                None if math(name, &vec![1.0; args.len()]).is_some() => Outer::Call(
                    name.clone(),
                    args.iter()
                        .map(|a| self.outer(a, filters))
                        .collect::<Result<_, _>>()?,
                ),
                None => return Err(format!("`{name}` is not a metric function")),
            },
            MetricExpr::Field(_)
            | MetricExpr::Verdict { .. }
            | MetricExpr::Score { .. }
            | MetricExpr::Categories { .. }
            | MetricExpr::Text(_)
            | MetricExpr::List(_) => {
                return Err(
                    "an item value is used outside any aggregate: wrap it in one, e.g. `rate(...)`"
                        .into(),
                );
            }
        })
    }

    fn inline(&mut self, name: &str, filters: &[MetricExpr]) -> Result<Outer, String> {
        if self.inlining.iter().any(|m| m == name) {
            return Err(format!(
                "it uses itself: {} → {name}",
                self.inlining.join(" → ")
            ));
        }
        let spec = self
            .metrics
            .get(name)
            .ok_or_else(|| format!("it uses the unknown metric `{name}`"))?;
        let mut filters = filters.to_vec();
        filters.extend(spec.filter.iter().cloned());
        self.inlining.push(name.to_string());
        let outer = self.outer(&spec.expr, &filters);
        self.inlining.pop();
        outer
    }
}

/// Checks that an aggregate's argument is read per item: no aggregate or metric inside it.
fn item_level(expr: &MetricExpr) -> Result<(), String> {
    match expr {
        MetricExpr::Metric(name) => Err(format!(
            "the metric `{name}` is a group value and cannot be an aggregate's argument"
        )),
        MetricExpr::Call { name, args } => {
            if AggregateKind::from_name(name).is_some() {
                return Err(format!("`{name}` is nested inside another aggregate"));
            }
            args.iter().try_for_each(item_level)
        }
        MetricExpr::List(items) => items.iter().try_for_each(item_level),
        MetricExpr::Unary { operand, .. } => item_level(operand),
        MetricExpr::Binary { lhs, rhs, .. } => {
            item_level(lhs)?;
            item_level(rhs)
        }
        _ => Ok(()),
    }
}

impl Outer {
    fn eval(&self, aggregate: &dyn Fn(usize) -> f64) -> f64 {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        match self {
            Outer::Number(n) => *n,
            Outer::Aggregate(i) => aggregate(*i),
            Outer::Unary(op, x) => {
                let x = x.eval(aggregate);
                match op.as_str() {
                    "-" => -x,
                    "not" | "!" if !x.is_nan() => flag(x == 0.0),
                    _ => f64::NAN,
                }
            }
            Outer::Binary(op, l, r) => {
                let (a, b) = (l.eval(aggregate), r.eval(aggregate));
                if a.is_nan() || b.is_nan() {
                    return f64::NAN;
                }
                match op.as_str() {
                    "and" => flag(a != 0.0 && b != 0.0),
                    "or" => flag(a != 0.0 || b != 0.0),
                    op => arithmetic(op, a, b)
                        .or_else(|| order(op, a.partial_cmp(&b)?).map(flag))
                        .unwrap_or(f64::NAN),
                }
            }
            Outer::Call(name, args) => {
                let args: Vec<f64> = args.iter().map(|a| a.eval(aggregate)).collect();
                math(name, &args).unwrap_or(f64::NAN)
            }
        }
    }

    fn has_aggregate(&self) -> bool {
        match self {
            Outer::Number(_) => false,
            Outer::Aggregate(_) => true,
            Outer::Unary(_, x) => x.has_aggregate(),
            Outer::Binary(_, l, r) => l.has_aggregate() || r.has_aggregate(),
            Outer::Call(_, args) => args.iter().any(Outer::has_aggregate),
        }
    }

    /// Whether the expression is a strictly monotone function of the one aggregate it reads
    /// once: constants combined with it by `+ - *`, divided by a constant, negated, or passed
    /// through `exp`, `log` or `sqrt`. Mapping an interval's bounds through such a function
    /// gives the interval of its value.
    fn monotone(&self) -> bool {
        let constant = |x: &Outer| !x.has_aggregate();
        match self {
            Outer::Aggregate(_) => true,
            Outer::Number(_) => false,
            Outer::Unary(op, x) => op == "-" && x.monotone(),
            Outer::Binary(op, l, r) => match op.as_str() {
                "+" | "-" => (constant(l) && r.monotone()) || (l.monotone() && constant(r)),
                "*" => {
                    let nonzero = |x: &Outer| constant(x) && x.eval(&|_| f64::NAN) != 0.0;
                    (nonzero(l) && r.monotone()) || (l.monotone() && nonzero(r))
                }
                "/" => l.monotone() && constant(r) && r.eval(&|_| f64::NAN) != 0.0,
                _ => false,
            },
            Outer::Call(name, args) => {
                matches!(name.as_str(), "exp" | "log" | "sqrt")
                    && matches!(args.as_slice(), [x] if x.monotone())
            }
        }
    }
}

/// Label text → a small id, so `kappa` cells stay two integers.
#[derive(Default)]
pub(crate) struct LabelIds(BTreeMap<String, u32>);

impl LabelIds {
    fn id(&mut self, label: &str) -> u32 {
        if let Some(&id) = self.0.get(label) {
            return id;
        }
        let id = self.0.len() as u32;
        self.0.insert(label.to_string(), id);
        id
    }
}

impl Aggregate {
    /// What this item gives the aggregate. A false filter leaves the item out; a filter that
    /// cannot be read, an unanswered item, or an argument that cannot be read makes it
    /// missing, so it is counted as excluded and never as a verdict either way.
    pub(crate) fn cell<'a>(&'a self, item: &ItemContext<'a>, labels: &mut LabelIds) -> Cell {
        // An item a judge it reads does not apply to is not in the aggregate: neither counted
        // nor excluded as a failure.
        if self
            .args
            .iter()
            .chain(&self.filters)
            .any(|e| item.not_applicable(e))
        {
            return Cell::Out;
        }
        let mut missing = false;
        for filter in &self.filters {
            match item.eval(filter) {
                Value::Bool(false) => return Cell::Out,
                Value::Bool(true) => {}
                _ => missing = true,
            }
        }
        if missing || !item.readable() {
            return Cell::Missing;
        }
        let args: Vec<Value<'a>> = self.args.iter().map(|a| item.eval(a)).collect();
        let cell = match (self.kind, args.as_slice()) {
            (AggregateKind::Count, []) => Some(Cell::Unit),
            (AggregateKind::Rate | AggregateKind::Count, [c]) => c.boolean().map(Cell::Bool),
            (AggregateKind::WeightedRate, [c, w]) => c
                .boolean()
                .zip(w.number())
                .map(|(c, w)| Cell::Weighted(c, w)),
            (AggregateKind::Kappa, [a, b]) => match (a.text(), b.text()) {
                (Some(a), Some(b)) => Some(Cell::Labels(labels.id(&a), labels.id(&b))),
                _ => None,
            },
            (_, [p, t]) => p.boolean().zip(t.boolean()).map(|(p, t)| Cell::Pair(p, t)),
            (_, [x]) => x.number().map(Cell::Num),
            _ => None,
        };
        cell.unwrap_or(Cell::Missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate() -> MetricExpr {
        MetricExpr::Call {
            name: "rate".into(),
            args: vec![MetricExpr::Bool(true)],
        }
    }

    fn bin(op: &str, l: MetricExpr, r: MetricExpr) -> MetricExpr {
        MetricExpr::Binary {
            op: op.into(),
            lhs: Box::new(l),
            rhs: Box::new(r),
        }
    }

    fn plan(expr: MetricExpr) -> Result<Plan, String> {
        let spec = MetricSpec {
            name: "m".into(),
            expr,
            filter: None,
            by: vec![],
            ci: None,
            confidence: 0.95,
            bootstrap: 100,
            description: None,
            pooling: None,
        };
        Plan::compile(&spec, &BTreeMap::new())
    }

    #[test]
    fn monotone_transforms_keep_the_exact_interval() {
        let one = MetricExpr::Number(1.0);
        for expr in [
            rate(),
            bin("-", one.clone(), rate()),
            bin("*", MetricExpr::Number(100.0), rate()),
            bin("/", rate(), MetricExpr::Number(2.0)),
        ] {
            assert_eq!(
                plan(expr.clone()).unwrap().proportion(),
                Some(0),
                "{expr:?}"
            );
        }
        for expr in [
            bin("*", rate(), rate()),
            bin("*", MetricExpr::Number(0.0), rate()),
            bin("/", one, rate()),
        ] {
            assert_eq!(plan(expr.clone()).unwrap().proportion(), None, "{expr:?}");
        }
    }

    #[test]
    fn item_values_outside_aggregates_are_refused() {
        let err = plan(MetricExpr::Field("hazard".into())).unwrap_err();
        assert!(err.contains("outside any aggregate"), "{err}");
        let err = plan(MetricExpr::Metric("m".into())).unwrap_err();
        assert!(err.contains("uses itself"), "{err}");
    }
}
