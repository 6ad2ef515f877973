//! Aggregates: the functions that turn a group's item values into one number (`rate`, `mean`,
//! `kappa`, ...). Each item is first reduced to a [`Cell`], the few numbers or flags its
//! aggregate needs; the scorer keeps those cells instead of whole records, and recomputes
//! aggregates from them for every bootstrap resample.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggregateKind {
    Rate,
    Count,
    Mean,
    Median,
    Sum,
    Std,
    Consistency,
    WeightedRate,
    Accuracy,
    Precision,
    Recall,
    F1,
    Kappa,
}

impl AggregateKind {
    /// The kind a function name calls, with the argument counts it accepts.
    pub(crate) fn from_name(name: &str) -> Option<(AggregateKind, &'static [usize])> {
        use AggregateKind::*;
        Some(match name {
            "rate" => (Rate, &[1]),
            "count" => (Count, &[0, 1]),
            "mean" => (Mean, &[1]),
            "median" => (Median, &[1]),
            "sum" => (Sum, &[1]),
            "std" => (Std, &[1]),
            "consistency" => (Consistency, &[1]),
            "weighted_rate" => (WeightedRate, &[2]),
            "accuracy" => (Accuracy, &[2]),
            "precision" => (Precision, &[2]),
            "recall" => (Recall, &[2]),
            "f1" => (F1, &[2]),
            "kappa" => (Kappa, &[2]),
            _ => return None,
        })
    }

    /// Whether the value is `k / n` of a binomial count, so an exact interval applies.
    pub(crate) fn is_proportion(self) -> bool {
        use AggregateKind::*;
        matches!(self, Rate | Accuracy | Precision | Recall)
    }
}

/// What one item gives one aggregate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Cell {
    /// The item is not in this aggregate: its filter is false.
    Out,
    /// The item is in it but cannot be read (failed call or judge, absent field).
    Missing,
    /// `count()`: the item is simply there.
    Unit,
    /// `rate`, `count(cond)`.
    Bool(bool),
    /// `mean`, `median`, `sum`, `std`, `consistency`.
    Num(f64),
    /// `weighted_rate`: the condition and the weight.
    Weighted(bool, f64),
    /// `accuracy`, `precision`, `recall`, `f1`: prediction and truth.
    Pair(bool, bool),
    /// `kappa`: both raters' labels, interned.
    Labels(u32, u32),
}

impl Cell {
    /// Whether the item contributes to the aggregate's value.
    pub(crate) fn is_value(self) -> bool {
        !matches!(self, Cell::Out | Cell::Missing)
    }
}

/// `k` of `n`: the successes and trials behind a proportion aggregate.
pub(crate) fn proportion<'c>(
    kind: AggregateKind,
    cells: impl Iterator<Item = &'c Cell>,
) -> (u64, u64) {
    let (mut k, mut n) = (0, 0);
    for cell in cells {
        let (success, trial) = match (kind, *cell) {
            (AggregateKind::Rate, Cell::Bool(b)) => (b, true),
            (AggregateKind::Accuracy, Cell::Pair(p, t)) => (p == t, true),
            // Precision is over predicted positives, recall over true positives.
            (AggregateKind::Precision, Cell::Pair(p, t)) => (p && t, p),
            (AggregateKind::Recall, Cell::Pair(p, t)) => (p && t, t),
            _ => (false, false),
        };
        k += u64::from(success && trial);
        n += u64::from(trial);
    }
    (k, n)
}

/// The aggregate's value over `cells`; NaN when it is undefined (nothing to average, a
/// precision with no predicted positive).
pub(crate) fn value<'c>(kind: AggregateKind, cells: impl Iterator<Item = &'c Cell>) -> f64 {
    use AggregateKind::*;
    let ratio = |(k, n): (u64, u64)| k as f64 / n as f64;
    match kind {
        Rate | Accuracy | Precision | Recall => ratio(proportion(kind, cells)),
        Count => cells
            .filter(|c| matches!(c, Cell::Unit | Cell::Bool(true)))
            .count() as f64,
        Mean | Median | Sum | Std | Consistency => {
            let numbers = cells.filter_map(|c| match c {
                Cell::Num(x) => Some(*x),
                _ => None,
            });
            match kind {
                Median => median(numbers.collect()),
                Sum => numbers.sum(),
                Mean => {
                    let (sum, n) = numbers.fold((0.0, 0u64), |(s, n), x| (s + x, n + 1));
                    sum / n as f64
                }
                // Population standard deviation; consistency maps it to (0, 1], 1 being no
                // spread at all across the group's variants.
                _ => {
                    let sd = population_std(numbers.collect());
                    if kind == Std { sd } else { (-5.0 * sd).exp() }
                }
            }
        }
        WeightedRate => {
            let (mut hit, mut total) = (0.0, 0.0);
            for cell in cells {
                if let Cell::Weighted(b, w) = *cell {
                    total += w;
                    if b {
                        hit += w;
                    }
                }
            }
            hit / total
        }
        F1 => {
            let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
            for cell in cells {
                if let Cell::Pair(p, t) = *cell {
                    tp += u64::from(p && t);
                    fp += u64::from(p && !t);
                    fn_ += u64::from(!p && t);
                }
            }
            // 2PR/(P+R) simplifies to 2TP/(2TP+FP+FN), defined whenever anything is positive.
            (2 * tp) as f64 / (2 * tp + fp + fn_) as f64
        }
        Kappa => kappa(cells),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

fn population_std(xs: Vec<f64>) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// Cohen's kappa between two raters: (p_o − p_e) / (1 − p_e), with p_e from each rater's own
/// label shares. When chance agreement is certain (both gave one and the same label
/// throughout) agreement is perfect and kappa is taken as 1.
fn kappa<'c>(cells: impl Iterator<Item = &'c Cell>) -> f64 {
    // Label → (times rater A gave it, times rater B gave it).
    let mut shares: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let (mut agree, mut n) = (0u64, 0u64);
    for cell in cells {
        if let Cell::Labels(a, b) = *cell {
            n += 1;
            agree += u64::from(a == b);
            shares.entry(a).or_default().0 += 1;
            shares.entry(b).or_default().1 += 1;
        }
    }
    if n == 0 {
        return f64::NAN;
    }
    let nf = n as f64;
    let observed = agree as f64 / nf;
    let chance: f64 = shares
        .values()
        .map(|&(a, b)| (a as f64 / nf) * (b as f64 / nf))
        .sum();
    if chance >= 1.0 {
        1.0
    } else {
        (observed - chance) / (1.0 - chance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(xs: &[f64]) -> Vec<Cell> {
        xs.iter().map(|&x| Cell::Num(x)).collect()
    }

    #[test]
    fn averages() {
        let cells = nums(&[1.0, 2.0, 3.0, 10.0]);
        assert_eq!(value(AggregateKind::Mean, cells.iter()), 4.0);
        assert_eq!(value(AggregateKind::Median, cells.iter()), 2.5);
        assert_eq!(value(AggregateKind::Sum, cells.iter()), 16.0);
        // Population variance: (9 + 4 + 1 + 36) / 4 = 12.5.
        assert!((value(AggregateKind::Std, cells.iter()) - 12.5f64.sqrt()).abs() < 1e-12);
        let flat = nums(&[0.5, 0.5]);
        assert_eq!(value(AggregateKind::Consistency, flat.iter()), 1.0);
        assert!(value(AggregateKind::Mean, [Cell::Missing].iter()).is_nan());
    }

    #[test]
    fn kappa_of_two_raters() {
        // A: y y y n n n; B: y y n n n y. p_o = 4/6; p_e = 0.5·0.5 + 0.5·0.5 = 0.5;
        // kappa = (2/3 − 1/2) / (1/2) = 1/3.
        let pairs = [(1, 1), (1, 1), (1, 0), (0, 0), (0, 0), (0, 1)];
        let cells: Vec<Cell> = pairs.iter().map(|&(a, b)| Cell::Labels(a, b)).collect();
        assert!((value(AggregateKind::Kappa, cells.iter()) - 1.0 / 3.0).abs() < 1e-12);
        let same = [Cell::Labels(0, 0), Cell::Labels(0, 0)];
        assert_eq!(value(AggregateKind::Kappa, same.iter()), 1.0);
    }
}
