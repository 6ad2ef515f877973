//! `compare`: the change between two runs, with MOVER intervals.

use assay_ir::{MetricValue, Summary};
use assay_score::compare;
use std::collections::BTreeMap;

/// A hazard's value with its interval: (value, low, high).
type Row<'a> = (&'a str, Option<(f64, f64, f64)>);

fn summary(model: &str, rows: &[Row<'_>]) -> Summary {
    Summary {
        suite: "s".into(),
        version: None,
        models: vec![model.into()],
        counts: BTreeMap::new(),
        judges: BTreeMap::new(),
        metrics: rows
            .iter()
            .map(|(hazard, v)| MetricValue {
                name: "unsafe".into(),
                model: model.into(),
                group: [("hazard".to_string(), hazard.to_string())].into(),
                value: v.map(|v| v.0),
                ci_low: v.map(|v| v.1),
                ci_high: v.map(|v| v.2),
                n: 100,
                excluded: 0,
            })
            .collect(),
        grades: vec![],
        warnings: vec![],
    }
}

#[test]
fn mover_difference() {
    let a = summary(
        "old",
        &[
            ("vcr", Some((0.2, 0.1, 0.35))),
            ("cse", Some((0.1, 0.05, 0.2))),
            ("ssh", None),
        ],
    );
    let b = summary(
        "new",
        &[
            ("vcr", Some((0.3, 0.2, 0.4))),
            ("ssh", Some((0.1, 0.0, 0.2))),
        ],
    );
    let d = compare(&a, &b);
    assert_eq!(d.len(), 2, "cse is only in a");
    let vcr = &d[0];
    assert_eq!((vcr.model_a.as_str(), vcr.model_b.as_str()), ("old", "new"));
    let close = |x: Option<f64>, y: f64| (x.unwrap() - y).abs() < 1e-12;
    assert!(close(vcr.difference, 0.1));
    // low = 0.1 − √(0.1² + 0.15²); high = 0.1 + √(0.1² + 0.1²).
    assert!(
        close(vcr.ci_low, 0.1 - (0.01f64 + 0.0225).sqrt()),
        "{vcr:?}"
    );
    assert!(close(vcr.ci_high, 0.1 + 0.02f64.sqrt()), "{vcr:?}");
    let ssh = &d[1];
    assert_eq!((ssh.a, ssh.difference, ssh.ci_low), (None, None, None));
    assert_eq!(ssh.b, Some(0.1));
}

#[test]
fn same_model_rows_only_when_runs_have_several() {
    let mut a = summary("x", &[("vcr", Some((0.2, 0.1, 0.3)))]);
    let mut b = summary("y", &[("vcr", Some((0.2, 0.1, 0.3)))]);
    a.models.push("z".into());
    b.models.push("z".into());
    assert!(compare(&a, &b).is_empty());
}
