//! Confidence intervals: Clopper-Pearson (exact binomial, as ModelBench reports hazard scores),
//! Wilson (score interval), and a seeded percentile bootstrap for means and for any other
//! statistic of a sample's rows.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;
use statrs::distribution::{Beta, ContinuousCDF, Normal};

/// An estimate with its interval and the count it rests on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub n: u64,
}

impl Estimate {
    /// A proportion of nothing: no value, and every proportion possible.
    fn undefined() -> Estimate {
        Estimate {
            value: f64::NAN,
            low: 0.0,
            high: 1.0,
            n: 0,
        }
    }
}

fn check(k: u64, n: u64, confidence: f64) {
    assert!(k <= n, "{k} successes out of {n}");
    assert!(
        confidence > 0.0 && confidence < 1.0,
        "confidence {confidence}"
    );
}

/// The exact (Clopper-Pearson) interval of `k` successes in `n` trials. With `n = 0` the
/// value is undefined (NaN) and the interval the whole of [0, 1].
pub fn clopper_pearson(k: u64, n: u64, confidence: f64) -> Estimate {
    check(k, n, confidence);
    if n == 0 {
        return Estimate::undefined();
    }
    let alpha = 1.0 - confidence;
    let (kf, nf) = (k as f64, n as f64);
    let low = if k == 0 {
        0.0
    } else {
        Beta::new(kf, nf - kf + 1.0)
            .expect("positive shape")
            .inverse_cdf(alpha / 2.0)
    };
    let high = if k == n {
        1.0
    } else {
        Beta::new(kf + 1.0, nf - kf)
            .expect("positive shape")
            .inverse_cdf(1.0 - alpha / 2.0)
    };
    Estimate {
        value: kf / nf,
        low,
        high,
        n,
    }
}

/// The Wilson score interval of `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64, confidence: f64) -> Estimate {
    check(k, n, confidence);
    if n == 0 {
        return Estimate::undefined();
    }
    let z = Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    let (p, nf) = (k as f64 / n as f64, n as f64);
    let denom = 1.0 + z * z / nf;
    let center = (p + z * z / (2.0 * nf)) / denom;
    let half = z / denom * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt();
    Estimate {
        value: p,
        low: (center - half).max(0.0),
        high: (center + half).min(1.0),
        n,
    }
}

/// The mean of `values` with a percentile bootstrap interval from `resamples` resamples drawn
/// by a ChaCha8 generator seeded with `seed`: the same inputs give the same interval.
pub fn bootstrap_mean(values: &[f64], confidence: f64, resamples: usize, seed: u64) -> Estimate {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let interval = bootstrap(n, confidence, resamples, seed, |picks| {
        picks.iter().map(|&i| values[i]).sum::<f64>() / n as f64
    });
    match interval {
        Some((low, high)) => Estimate {
            value: mean,
            low: low.min(mean),
            high: high.max(mean),
            n: n as u64,
        },
        None => Estimate {
            value: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
            n: n as u64,
        },
    }
}

/// A percentile bootstrap of any statistic of `n` rows: `resamples` times, draw `n` row
/// indices with replacement from a ChaCha8 generator seeded with `seed` and compute
/// `statistic` on them; the interval is the `(1 - confidence) / 2` and `(1 + confidence) / 2`
/// percentiles (nearest rank) of the finite results. `None` when there are no rows or no
/// resample gave a finite value. The same inputs give the same interval, on every platform.
pub fn bootstrap(
    n: usize,
    confidence: f64,
    resamples: usize,
    seed: u64,
    mut statistic: impl FnMut(&[usize]) -> f64,
) -> Option<(f64, f64)> {
    assert!(
        confidence > 0.0 && confidence < 1.0,
        "confidence {confidence}"
    );
    if n == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picks = vec![0; n];
    let mut stats = Vec::with_capacity(resamples.max(1));
    for _ in 0..resamples.max(1) {
        for pick in &mut picks {
            *pick = (rng.next_u64() % n as u64) as usize;
        }
        let s = statistic(&picks);
        if s.is_finite() {
            stats.push(s);
        }
    }
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    let at = |q: f64| stats[((q * (stats.len() - 1) as f64).round() as usize).min(stats.len() - 1)];
    Some((at(alpha / 2.0), at(1.0 - alpha / 2.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    /// Reference values from scipy (`beta.ppf`), the same as R's `binom.test`.
    #[test]
    fn clopper_pearson_matches_the_reference() {
        let e = clopper_pearson(7, 100, 0.95);
        assert!(
            close(e.low, 0.028_605_3) && close(e.high, 0.138_919_7),
            "{e:?}"
        );
        let e = clopper_pearson(0, 50, 0.95);
        assert!(e.low == 0.0 && close(e.high, 0.071_121_7), "{e:?}");
        let e = clopper_pearson(50, 50, 0.95);
        assert!(close(e.low, 0.928_878_3) && e.high == 1.0, "{e:?}");
    }

    /// Reference values from statsmodels' `proportion_confint(method="wilson")`.
    #[test]
    fn wilson_matches_the_reference() {
        let e = wilson(7, 100, 0.95);
        assert!(
            close(e.low, 0.034_319_3) && close(e.high, 0.137_495_1),
            "{e:?}"
        );
    }

    #[test]
    fn bootstrap_is_seeded() {
        let v: Vec<f64> = (0..40).map(|i| f64::from(i % 5)).collect();
        assert_eq!(
            bootstrap_mean(&v, 0.95, 500, 9),
            bootstrap_mean(&v, 0.95, 500, 9)
        );
        let e = bootstrap_mean(&v, 0.95, 2000, 9);
        assert!(e.low < 2.0 && 2.0 < e.high && e.value == 2.0, "{e:?}");
    }

    /// Golden values: a change to the generator, the draws or the percentile rule shows here
    /// first, since it would change every published bootstrap interval.
    #[test]
    fn bootstrap_golden_values() {
        let v: Vec<f64> = (0..10).map(f64::from).collect();
        let got = bootstrap(v.len(), 0.9, 200, 42, |picks| {
            picks.iter().map(|&i| v[i]).sum::<f64>() / v.len() as f64
        });
        assert_eq!(got, Some((3.2, 5.8)));
    }

    proptest! {
        #[test]
        fn intervals_contain_the_estimate(n in 1u64..2000, frac in 0.0f64..=1.0) {
            let k = ((n as f64) * frac).round() as u64;
            for e in [clopper_pearson(k, n, 0.95), wilson(k, n, 0.95)] {
                prop_assert!(e.low <= e.value + 1e-12 && e.value <= e.high + 1e-12, "{e:?}");
                prop_assert!(0.0 <= e.low && e.high <= 1.0);
            }
        }

        #[test]
        fn intervals_shrink_with_n(n in 10u64..500, frac in 0.05f64..0.95) {
            let k = ((n as f64) * frac).round() as u64;
            for f in [clopper_pearson as fn(u64, u64, f64) -> Estimate, wilson] {
                let small = f(k, n, 0.95);
                let large = f(k * 4, n * 4, 0.95);
                prop_assert!(large.high - large.low < small.high - small.low);
            }
        }
    }
}
