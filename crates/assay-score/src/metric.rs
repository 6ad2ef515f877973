//! Scoring a run ([`summarize`]): every metric for every model and group, with its interval,
//! then every grade. Results stream through once; each item leaves behind only one small row
//! of [`Cell`]s per metric, enough to recompute the metric on bootstrap resamples.
//!
//! Counting rules, the ones a reader of a safety score relies on:
//! * an item whose filter is false is not in the metric at all;
//! * an item the metric cannot read (failed call, filtered or skipped item, failed judge,
//!   absent field) is *excluded*: counted in `excluded`, never as safe or unsafe;
//! * `n` is the items the value rests on;
//! * a metric `by turn` has a row per target turn of each item (one for an item without a
//!   transcript), read with that turn's verdicts: its `n` counts turns.

use crate::aggregate::{self, Cell};
use crate::interval::{bootstrap, clopper_pearson, wilson};
use crate::plan::{LabelIds, Plan};
use crate::value::{ItemContext, NONE, Value};
use assay_ir::{
    JudgeCounts, Judgement, MetricExpr, MetricSpec, MetricValue, ResultRecord, Scoring, SuiteInfo,
    Summary,
};
use std::collections::BTreeMap;

/// Share of a judge's outcomes that may fail before the run is flagged: the validity rule's.
const JUDGE_ERROR_LIMIT: f64 = crate::validity::DEFAULT_MAX_INVALID;

/// Resamples when a metric does not say how many.
const DEFAULT_RESAMPLES: usize = 1000;

/// The `by` key that makes each target turn a row.
const TURN: &str = "turn";

/// Group id of an item in a metric without groups.
const NO_GROUP: u32 = u32::MAX;

/// The group value of a `by` key that cannot be read for an item: a judge's label when the
/// call or the judge failed, a gold label the item lacks. Such items form a group of their
/// own, so the groups' `n` and `excluded` add up to the ungrouped row's; it is never graded.
/// No label can be written with parentheses, so it cannot collide with one.
pub const UNREADABLE: &str = "(unreadable)";

/// Scores a run: every metric for every model and group, then every grade. `reference` is
/// another run's summary, read when a grade's reference target is not a model of this run.
pub fn summarize(
    scoring: &Scoring,
    suite: &SuiteInfo,
    results: &mut dyn Iterator<Item = (ResultRecord, Option<Judgement>)>,
    reference: Option<&Summary>,
) -> Summary {
    let by_name: BTreeMap<&str, &MetricSpec> = scoring
        .metrics
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let mut warnings = Vec::new();
    let mut metrics: Vec<MetricRows> = scoring
        .metrics
        .iter()
        .map(|spec| {
            let plan = Plan::compile(spec, &by_name);
            if let Err(why) = &plan {
                warnings.push(format!("metric `{}` cannot be computed: {why}", spec.name));
            }
            MetricRows::new(spec, plan.ok(), scoring)
        })
        .collect();

    // A published scale reads the counts of the metric it grades, by persona as well.
    let mut strata: Vec<(usize, MetricRows)> = scoring
        .grades
        .iter()
        .enumerate()
        .filter(|(_, grade)| grade.scale.is_some())
        .filter_map(|(g, grade)| {
            let spec = by_name.get(grade.metric.as_str())?;
            let plan = Plan::compile(spec, &by_name).ok();
            let mut spec = (*spec).clone();
            spec.by.push("persona".to_string());
            let mut rows = MetricRows::new(&spec, plan, scoring);
            rows.stratified = true;
            Some((g, rows))
        })
        .collect();

    let mut models: Vec<String> = Vec::new();
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut judges: BTreeMap<String, BTreeMap<String, JudgeCounts>> = BTreeMap::new();
    let mut labels = LabelIds::default();
    for (record, judgement) in results {
        let model = match models.iter().position(|m| *m == record.model) {
            Some(at) => at,
            None => {
                models.push(record.model.clone());
                models.len() - 1
            }
        };
        *counts
            .entry(record.model.clone())
            .or_default()
            .entry(record.state.as_str().to_string())
            .or_default() += 1;
        for (judge, outcome) in judgement.iter().flat_map(|j| &j.verdicts) {
            let tally = judges
                .entry(judge.clone())
                .or_default()
                .entry(record.model.clone())
                .or_default();
            if outcome.not_applicable {
                tally.not_applicable += 1;
            } else if outcome.is_error() {
                tally.errors += 1;
            } else {
                tally.verdicts += 1;
                tally.invalid += u64::from(outcome.invalid.is_some());
            }
        }
        let item = ItemContext {
            record: &record,
            judgement: judgement.as_ref(),
            severity: &scoring.severity,
            turn: None,
        };
        for rows in &mut metrics {
            rows.add(model, &item, &mut labels);
        }
        for (_, rows) in &mut strata {
            rows.add(model, &item, &mut labels);
        }
    }

    let mut values = Vec::new();
    for (spec, rows) in scoring.metrics.iter().zip(&metrics) {
        for (m, model) in models.iter().enumerate() {
            values.extend(rows.values(spec, scoring.seed, m, model));
        }
    }
    for (judge, per_model) in &judges {
        for model in &models {
            let Some(c) = per_model.get(model) else {
                continue;
            };
            let (failed, total) = crate::validity::judge_failures(c);
            if total > 0 && failed as f64 / total as f64 > JUDGE_ERROR_LIMIT {
                let invalid = match c.invalid {
                    0 => String::new(),
                    n => format!(" ({n} invalid, counted by its `invalid` rule)"),
                };
                warnings.push(format!(
                    "judge `{judge}` failed on {failed} of {total} responses ({:.1}%){invalid} \
                     for `{model}`: above the {}% a valid run allows",
                    100.0 * failed as f64 / total as f64,
                    JUDGE_ERROR_LIMIT * 100.0
                ));
            }
        }
    }
    let mut summary = Summary {
        suite: suite.name.clone(),
        version: suite.version.clone(),
        models,
        counts,
        judges,
        metrics: values,
        grades: Vec::new(),
        warnings,
    };
    let counts: BTreeMap<usize, Result<ScaleCounts, String>> = strata
        .iter()
        .map(|(g, rows)| (*g, rows.scale_counts(&summary.models)))
        .collect();
    let mut grade_warnings = Vec::new();
    summary.grades =
        crate::band::grade_all(scoring, &summary, reference, &counts, &mut grade_warnings);
    summary.warnings.extend(grade_warnings);
    summary
}

/// What a published scale reads of the metric it grades: per model, per group (the values of
/// the metric's `by` keys), the proportion's `(persona, count, denominator)`, and whether the
/// count is of safe items (`1 - rate(x == safe)`) or of unsafe ones (`rate(x == unsafe)`).
pub(crate) struct ScaleCounts {
    pub counts_safe: bool,
    pub groups: BTreeMap<String, GroupStrata>,
}

/// Per group (its `by` values): `(persona, count, denominator)` of each persona.
pub(crate) type GroupStrata = BTreeMap<Vec<String>, Vec<(String, u64, u64)>>;

/// One metric's rows for every model: per item, its group and one cell per aggregate.
struct MetricRows {
    plan: Option<Plan>,
    /// The `by` keys as item expressions.
    keys: Vec<MetricExpr>,
    /// Group values by id, and ids by values.
    groups: Vec<Vec<String>>,
    group_ids: BTreeMap<Vec<String>, u32>,
    /// Per model, in `Summary::models` order.
    tables: Vec<Table>,
    /// The last key is a stratum (the persona): an item without one is in the stratum "".
    stratified: bool,
    /// `by turn`: each target turn of an item is a row.
    per_turn: bool,
}

/// One model's rows, flat: row `r` has group `group[r]` and cells
/// `cells[r * width .. (r + 1) * width]`.
#[derive(Default)]
struct Table {
    group: Vec<u32>,
    cells: Vec<Cell>,
    /// `(row, group)`: the further groups of a row grouped by a list (a judge's categories:
    /// an item is in the group of each category named).
    extra: Vec<(u32, u32)>,
}

impl Table {
    /// Each group's rows.
    fn members(&self, groups: usize) -> Vec<Vec<usize>> {
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
        for (r, &g) in self.group.iter().enumerate() {
            if g != NO_GROUP {
                members[g as usize].push(r);
            }
        }
        for &(r, g) in &self.extra {
            members[g as usize].push(r as usize);
        }
        for rows in &mut members {
            rows.sort_unstable();
        }
        members
    }
}

impl MetricRows {
    fn new(spec: &MetricSpec, plan: Option<Plan>, scoring: &Scoring) -> MetricRows {
        let keys = spec.by.iter().map(|key| group_key(key, scoring)).collect();
        MetricRows {
            plan,
            keys,
            groups: Vec::new(),
            group_ids: BTreeMap::new(),
            tables: Vec::new(),
            stratified: false,
            per_turn: spec.by.iter().any(|key| key == TURN),
        }
    }

    fn add(&mut self, model: usize, item: &ItemContext<'_>, labels: &mut LabelIds) {
        if self.per_turn {
            for turn in item.turns() {
                self.add_row(model, &item.at(turn), labels);
            }
        } else {
            self.add_row(model, item, labels);
        }
    }

    /// Adds one row: an item, or one target turn of it.
    fn add_row(&mut self, model: usize, item: &ItemContext<'_>, labels: &mut LabelIds) {
        let Some(plan) = &self.plan else { return };
        if self.tables.len() <= model {
            self.tables.resize_with(model + 1, Table::default);
        }
        let table = &mut self.tables[model];
        // The cells go straight into the table and come out again if the item is in none
        // of the aggregates: no allocation per item.
        let start = table.cells.len();
        table
            .cells
            .extend(plan.aggregates.iter().map(|a| a.cell(item, labels)));
        if table.cells[start..].iter().all(|c| *c == Cell::Out) {
            table.cells.truncate(start);
            return;
        }
        // Each key's values: one, or for a list (a judge's categories) each of its elements,
        // `(not set)` for an empty one.
        let mut choices: Vec<Vec<String>> = Vec::with_capacity(self.keys.len());
        for (i, expr) in self.keys.iter().enumerate() {
            let values = match item.eval(expr) {
                Value::List(items) => {
                    let mut values: Vec<String> = items
                        .iter()
                        .filter_map(|v| v.text().map(|t| t.into_owned()))
                        .collect();
                    values.sort();
                    values.dedup();
                    if values.is_empty() {
                        values.push(NONE.to_string());
                    }
                    values
                }
                value => vec![match value.text() {
                    Some(text) => text.into_owned(),
                    None if self.stratified && i + 1 == self.keys.len() => String::new(),
                    None => UNREADABLE.to_string(),
                }],
            };
            choices.push(values);
        }
        let row = self.tables[model].group.len() as u32;
        if self.keys.is_empty() {
            self.tables[model].group.push(NO_GROUP);
            return;
        }
        // Every combination of the keys' values, in order; the first is the row's group.
        let mut at = vec![0usize; choices.len()];
        let mut first = true;
        loop {
            let key: Vec<String> = at
                .iter()
                .zip(&choices)
                .map(|(&i, c)| c[i].clone())
                .collect();
            let id = match self.group_ids.get(&key) {
                Some(&id) => id,
                None => {
                    let id = self.groups.len() as u32;
                    self.groups.push(key.clone());
                    self.group_ids.insert(key, id);
                    id
                }
            };
            if first {
                self.tables[model].group.push(id);
                first = false;
            } else {
                self.tables[model].extra.push((row, id));
            }
            // The next combination (the last key varies fastest).
            let mut k = choices.len();
            loop {
                if k == 0 {
                    return;
                }
                k -= 1;
                at[k] += 1;
                if at[k] < choices[k].len() {
                    break;
                }
                at[k] = 0;
            }
        }
    }

    /// The counts a published scale grades from; the rows' last `by` key is the persona.
    /// `Err` says why the metric cannot be graded on a scale.
    fn scale_counts(&self, models: &[String]) -> Result<ScaleCounts, String> {
        let plan = self.plan.as_ref().ok_or("the metric cannot be computed")?;
        let not_a_rate = "a published scale grades an unsafe rate from its counts: \
                          `rate(x == unsafe)` or `1 - rate(x == safe)`";
        let j = plan.proportion().ok_or(not_a_rate)?;
        let counts_safe = match (plan.eval(&|_| 0.0), plan.eval(&|_| 1.0)) {
            (0.0, 1.0) => false,
            (1.0, 0.0) => true,
            _ => return Err(not_a_rate.to_string()),
        };
        let kind = plan.aggregates[j].kind;
        let width = plan.aggregates.len();
        let mut groups: BTreeMap<String, GroupStrata> = BTreeMap::new();
        for (m, model) in models.iter().enumerate() {
            let per_group = groups.entry(model.clone()).or_default();
            let Some(table) = self.tables.get(m) else {
                continue;
            };
            let members = table.members(self.groups.len());
            for (values, &id) in &self.group_ids {
                let rows = &members[id as usize];
                if rows.is_empty() || values.iter().any(|v| v == UNREADABLE) {
                    continue;
                }
                let cells = rows.iter().map(|&r| &table.cells[r * width + j]);
                let (k, n) = aggregate::proportion(kind, cells);
                let (persona, group) = values.split_last().expect("persona is a key");
                per_group
                    .entry(group.to_vec())
                    .or_default()
                    .push((persona.clone(), k, n));
            }
        }
        Ok(ScaleCounts {
            counts_safe,
            groups,
        })
    }

    /// The model's rows: the ungrouped one, then one per group any model has, in the order
    /// of the group values.
    fn values(&self, spec: &MetricSpec, seed: u64, model: usize, name: &str) -> Vec<MetricValue> {
        let empty = Table::default();
        let table = self.tables.get(model).unwrap_or(&empty);
        // Each group's rows, gathered in one pass over the table.
        let members = table.members(self.groups.len());
        let everything: Vec<usize> = (0..table.group.len()).collect();
        let mut out = vec![self.value(spec, seed, name, table, BTreeMap::new(), &everything)];
        for (values, id) in self.ordered_groups(spec) {
            let group = spec
                .by
                .iter()
                .cloned()
                .zip(values.iter().cloned())
                .collect();
            out.push(self.value(spec, seed, name, table, group, &members[id as usize]));
        }
        if spec.pooling.as_deref() == Some("groups") && !spec.by.is_empty() {
            self.mean_of_groups(spec, seed, table, &mut out);
        }
        out
    }

    /// The groups in the order of their values: alphabetical, but rounds (`by turn`) in
    /// numeric order, so turn 10 comes after turn 9.
    fn ordered_groups(&self, spec: &MetricSpec) -> Vec<(&Vec<String>, u32)> {
        let mut groups: Vec<(&Vec<String>, u32)> =
            self.group_ids.iter().map(|(v, &id)| (v, id)).collect();
        if let Some(k) = spec.by.iter().position(|key| key == TURN) {
            let round = |values: &[String]| values[k].parse::<u64>().unwrap_or(u64::MAX);
            groups.sort_by(|(a, _), (b, _)| {
                a[..k]
                    .cmp(&b[..k])
                    .then_with(|| round(a).cmp(&round(b)))
                    .then_with(|| a[k..].cmp(&b[k..]))
            });
        }
        groups
    }

    /// `pooling = groups`: the ungrouped row becomes the unweighted mean of the group values,
    /// so a small group counts as much as a large one. Its interval is a bootstrap over the
    /// items of every group with a value, each resample averaging its groups' values.
    fn mean_of_groups(&self, spec: &MetricSpec, seed: u64, table: &Table, out: &mut [MetricValue]) {
        let Some(plan) = &self.plan else { return };
        let width = plan.aggregates.len();
        let cells = |r: usize| &table.cells[r * width..(r + 1) * width];
        // The items whose group cannot be read are no group to average.
        let valued: Vec<&MetricValue> = out[1..]
            .iter()
            .filter(|v| v.value.is_some() && !v.group.values().any(|g| g == UNREADABLE))
            .collect();
        let mut overall = out[0].clone();
        overall.value = None;
        overall.ci_low = None;
        overall.ci_high = None;
        overall.n = valued.iter().map(|v| v.n).sum();
        if !valued.is_empty() {
            let point = valued.iter().filter_map(|v| v.value).sum::<f64>() / valued.len() as f64;
            overall.value = Some(point);
            // The contributing rows of every group that has a value, with their group.
            let ids: Vec<u32> = valued
                .iter()
                .filter_map(|v| {
                    let key: Vec<String> = spec
                        .by
                        .iter()
                        .filter_map(|b| v.group.get(b).cloned())
                        .collect();
                    self.group_ids.get(&key).copied()
                })
                .collect();
            let rows: Vec<(usize, usize)> = (0..table.group.len())
                .filter(|&r| cells(r).iter().any(|c| c.is_value()))
                .filter_map(|r| {
                    ids.iter()
                        .position(|&id| id == table.group[r])
                        .map(|g| (r, g))
                })
                .collect();
            let confidence = spec.confidence;
            if !plan.is_count() && !method_is_none(spec) && confidence > 0.0 && confidence < 1.0 {
                let resamples = match spec.bootstrap {
                    0 => DEFAULT_RESAMPLES,
                    n => n,
                };
                let resample_seed = resample_seed(seed, &spec.name, &overall.group, &overall.model);
                let interval =
                    bootstrap(rows.len(), confidence, resamples, resample_seed, |picks| {
                        let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
                        for &p in picks {
                            let (r, g) = rows[p];
                            by_group[g].push(r);
                        }
                        let values: Vec<f64> = by_group
                            .iter()
                            .filter(|rows| !rows.is_empty())
                            .map(|rows| evaluate(plan, table, rows))
                            .filter(|v| v.is_finite())
                            .collect();
                        values.iter().sum::<f64>() / values.len() as f64
                    })
                    .map(|(low, high)| (low.min(point), high.max(point)));
                if let Some((low, high)) = interval.filter(|(l, h)| l.is_finite() && h.is_finite())
                {
                    overall.ci_low = Some(low);
                    overall.ci_high = Some(high);
                }
            }
        }
        out[0] = overall;
    }

    fn value(
        &self,
        spec: &MetricSpec,
        seed: u64,
        model: &str,
        table: &Table,
        group: BTreeMap<String, String>,
        rows: &[usize],
    ) -> MetricValue {
        let mut value = MetricValue {
            name: spec.name.clone(),
            model: model.to_string(),
            group,
            value: None,
            ci_low: None,
            ci_high: None,
            n: 0,
            excluded: 0,
        };
        let Some(plan) = &self.plan else {
            return value;
        };
        let width = plan.aggregates.len();
        let cells = |r: usize| &table.cells[r * width..(r + 1) * width];
        // The items the value rests on; the rest of the group's rows had nothing to read.
        let contributing: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&r| cells(r).iter().any(|c| c.is_value()))
            .collect();
        value.n = contributing.len() as u64;
        value.excluded = (rows.len() - contributing.len()) as u64;
        let point = evaluate(plan, table, &contributing);
        if contributing.is_empty() || !point.is_finite() {
            return value;
        }
        value.value = Some(point);
        // A proportion rests on its denominator: precision on the flagged items, recall on
        // the truly positive ones, not on every item read.
        if let Some(j) = plan.proportion() {
            let kind = plan.aggregates[j].kind;
            let (_, n) = aggregate::proportion(kind, contributing.iter().map(|&r| &cells(r)[j]));
            value.n = n;
        }
        let confidence = spec.confidence;
        if plan.is_count() || method_is_none(spec) || !(confidence > 0.0 && confidence < 1.0) {
            return value;
        }
        let method = spec.ci.as_deref();
        let interval = match plan.proportion() {
            Some(j) if method != Some("bootstrap") => {
                let kind = plan.aggregates[j].kind;
                let (k, n) =
                    aggregate::proportion(kind, contributing.iter().map(|&r| &cells(r)[j]));
                let e = if method == Some("wilson") {
                    wilson(k, n, confidence)
                } else {
                    clopper_pearson(k, n, confidence)
                };
                // The bounds of the proportion, mapped through the monotone rest of the
                // metric; a decreasing map (`1 - rate`) swaps them.
                let (a, b) = (plan.eval(&|_| e.low), plan.eval(&|_| e.high));
                Some((a.min(b), a.max(b)))
            }
            _ => {
                let resamples = match spec.bootstrap {
                    0 => DEFAULT_RESAMPLES,
                    n => n,
                };
                let seed = resample_seed(seed, &spec.name, &value.group, model);
                bootstrap(contributing.len(), confidence, resamples, seed, |picks| {
                    let picked: Vec<usize> = picks.iter().map(|&p| contributing[p]).collect();
                    evaluate(plan, table, &picked)
                })
                // Percentiles of a skewed statistic can sit beside the point estimate;
                // report an interval that contains it, as `bootstrap_mean` does.
                .map(|(low, high)| (low.min(point), high.max(point)))
            }
        };
        if let Some((low, high)) = interval.filter(|(l, h)| l.is_finite() && h.is_finite()) {
            value.ci_low = Some(low);
            value.ci_high = Some(high);
        }
        value
    }
}

/// A `by` key as an item expression: a judge's label (`by guard`, or `by judge.aspect`), else
/// an item field or axis.
fn group_key(key: &str, scoring: &Scoring) -> MetricExpr {
    let is_judge = |name: &str| scoring.judges.iter().any(|j| j.name == name);
    if is_judge(key) {
        return MetricExpr::Verdict {
            judge: key.to_string(),
            aspect: None,
        };
    }
    // `by guard.categories` (or `.category`): the categories the judge named, each a group.
    if let Some((judge, "categories" | "category")) = key.split_once('.')
        && is_judge(judge)
    {
        return MetricExpr::Categories {
            judge: judge.to_string(),
        };
    }
    if let Some((judge, aspect)) = key.split_once('.')
        && is_judge(judge)
    {
        return MetricExpr::Verdict {
            judge: judge.to_string(),
            aspect: Some(aspect.to_string()),
        };
    }
    MetricExpr::Field(key.to_string())
}

/// The bootstrap seed of one row: the suite's seed mixed with a stable hash (FNV-1a, fixed
/// by this code rather than by the standard library's hasher, which may change) of the
/// metric, group and model, so rows resample independently yet identically on every run.
fn resample_seed(seed: u64, metric: &str, group: &BTreeMap<String, String>, model: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(metric.as_bytes());
    for (key, value) in group {
        eat(key.as_bytes());
        eat(value.as_bytes());
    }
    eat(model.as_bytes());
    // SplitMix64's finaliser, so nearby seeds give unrelated streams.
    let mut z = seed ^ hash;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `ci = none`: the metric asks for no interval.
fn method_is_none(spec: &MetricSpec) -> bool {
    spec.ci.as_deref() == Some("none")
}

/// The metric's value over some of a table's rows: each aggregate over their cells, then the
/// group-level expression.
fn evaluate(plan: &Plan, table: &Table, rows: &[usize]) -> f64 {
    let width = plan.aggregates.len();
    let aggregates: Vec<f64> = plan
        .aggregates
        .iter()
        .enumerate()
        .map(|(j, a)| aggregate::value(a.kind, rows.iter().map(|&r| &table.cells[r * width + j])))
        .collect();
    plan.eval(&|j| aggregates[j])
}
