//! Comparing two runs ([`compare`]): the change in every metric row both have, with an
//! interval for the change built from each side's own interval by the MOVER method (Method
//! of Variance Estimates Recovery, Zou & Donner 2008). MOVER needs only the published bounds,
//! so it works for Clopper-Pearson, Wilson and bootstrap intervals alike, and for runs whose
//! items are long gone.

use assay_ir::{MetricValue, Summary};
use serde::Serialize;
use std::collections::BTreeMap;

/// One metric row in both runs: `b − a`, with its interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub name: String,
    pub group: BTreeMap<String, String>,
    pub model_a: String,
    pub model_b: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub difference: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

/// `b` minus `a` for every metric row present in both: same metric, model and group. When
/// each run has exactly one model, rows match across the two models (one model against
/// another on the same suite). Rows come in `a`'s order.
pub fn compare(a: &Summary, b: &Summary) -> Vec<Difference> {
    let across = a.models.len() == 1 && b.models.len() == 1;
    let key = |m: &MetricValue| {
        let model = if across {
            String::new()
        } else {
            m.model.clone()
        };
        (m.name.clone(), model, m.group.clone())
    };
    let mut in_b: BTreeMap<_, &MetricValue> = BTreeMap::new();
    for row in &b.metrics {
        in_b.entry(key(row)).or_insert(row);
    }
    a.metrics
        .iter()
        .filter_map(|ra| {
            let rb = in_b.get(&key(ra))?;
            Some(difference(ra, rb))
        })
        .collect()
}

fn difference(a: &MetricValue, b: &MetricValue) -> Difference {
    let d = a.value.zip(b.value).map(|(va, vb)| vb - va);
    let bounds = |m: &MetricValue| Some((m.value?, m.ci_low?, m.ci_high?));
    let (ci_low, ci_high) = match (d, bounds(a), bounds(b)) {
        (Some(d), Some((va, la, ha)), Some((vb, lb, hb))) => (
            Some(d - ((vb - lb).powi(2) + (ha - va).powi(2)).sqrt()),
            Some(d + ((hb - vb).powi(2) + (va - la).powi(2)).sqrt()),
        ),
        _ => (None, None),
    };
    Difference {
        name: a.name.clone(),
        group: a.group.clone(),
        model_a: a.model.clone(),
        model_b: b.model.clone(),
        a: a.value,
        b: b.value,
        difference: d,
        ci_low,
        ci_high,
    }
}
