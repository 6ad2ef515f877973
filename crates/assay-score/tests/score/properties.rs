//! Properties of the intervals `summarize` reports for a rate.

use crate::support::*;
use proptest::prelude::*;

fn rate_of(k: usize, n: usize) -> assay_ir::MetricValue {
    let s = scoring(vec![metric(
        "unsafe",
        call("rate", vec![is("guard", "unsafe")]),
    )]);
    let mut items = item("m").verdict("guard", "unsafe").times(k);
    items.extend(item("m").verdict("guard", "safe").times(n - k));
    row(&run(&s, items), "unsafe", "m", &[]).clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_interval_contains_the_estimate(n in 1usize..300, frac in 0.0f64..=1.0) {
        let k = ((n as f64) * frac).round() as usize;
        let r = rate_of(k, n);
        let (v, low, high) = (r.value.unwrap(), r.ci_low.unwrap(), r.ci_high.unwrap());
        prop_assert!(low <= v + 1e-12 && v <= high + 1e-12, "{r:?}");
        prop_assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high));
    }

    #[test]
    fn the_interval_shrinks_as_n_grows(n in 10usize..150, frac in 0.05f64..0.95) {
        let k = ((n as f64) * frac).round() as usize;
        let small = rate_of(k, n);
        let large = rate_of(4 * k, 4 * n);
        let width = |r: &assay_ir::MetricValue| r.ci_high.unwrap() - r.ci_low.unwrap();
        prop_assert!(width(&large) < width(&small), "{small:?} {large:?}");
    }
}
