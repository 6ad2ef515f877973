//! `assay-score`: turns a run's results and judgements into numbers. Pure: records in, a
//! [`Summary`](assay_ir::Summary) out, no IO. The stages, each in its own file:
//!
//! * `value.rs`: what a metric expression says about one item;
//! * `plan.rs`: a metric compiled into aggregates under a group-level expression, with the
//!   metrics it names inlined;
//! * `aggregate.rs`: `rate`, `mean`, `kappa`, … over a group's items;
//! * `metric.rs`: [`summarize`], every metric by model and group with its interval;
//! * `interval.rs`: Clopper-Pearson, Wilson and the seeded bootstrap;
//! * `band.rs`: grading metric rows on a spec's bands; `grade.rs`: the published AILuminate
//!   v1.0 and MLCommons v0.5 scales, computed as ModelBench computes them, and `scale.rs`:
//!   grading a metric's counts on them;
//! * `compare.rs`: [`compare`], the change between two runs with MOVER intervals;
//! * `validity.rs`: whether a run measured enough to be relied on.

mod aggregate;
mod band;
mod compare;
pub mod grade;
pub mod interval;
mod metric;
mod plan;
mod scale;
pub mod validity;
mod value;

pub use compare::{Difference, compare};
pub use grade::{Grade, Scale, Stratum, fmean, pooled_safe, safe_estimate, safe_items};
pub use interval::{Estimate, bootstrap, bootstrap_mean, clopper_pearson, wilson};
pub use metric::{UNREADABLE, summarize};

/// Whether an item condition holds for one result given judges' outcomes on it: `Some(true)`
/// or `Some(false)`, `None` when it cannot be read (a judge it names gave no verdict). The
/// interpreter tests a program's `stop when` conditions this way after each target turn.
pub fn condition(
    expr: &assay_ir::MetricExpr,
    record: &assay_ir::ResultRecord,
    verdicts: &std::collections::BTreeMap<String, assay_ir::JudgeOutcome>,
) -> Option<bool> {
    let judgement = assay_ir::Judgement {
        item_id: record.item_id.clone(),
        model: record.model.clone(),
        verdicts: verdicts.clone(),
        turns: Vec::new(),
    };
    let severity = std::collections::BTreeMap::new();
    let context = value::ItemContext {
        record,
        judgement: Some(&judgement),
        severity: &severity,
        turn: None,
    };
    context.eval(expr).boolean()
}
