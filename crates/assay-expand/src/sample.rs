//! Seeded sampling without replacement, streaming: Knuth's selection sampling (algorithm S)
//! picks `n` of `total` candidates in one ordered pass, keeping their original order and
//! holding nothing but two counters. The generator is ChaCha8, seeded explicitly, so a spec
//! samples the same items on every machine and in every version.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

pub(crate) struct Selection {
    rng: ChaCha8Rng,
    /// How many are still to be picked, and how many candidates are still to come.
    wanted: u64,
    remaining: u64,
}

impl Selection {
    pub(crate) fn new(seed: u64, wanted: u64, total: u64) -> Self {
        Selection {
            rng: ChaCha8Rng::seed_from_u64(seed),
            wanted: wanted.min(total),
            remaining: total,
        }
    }

    /// Called once per candidate, in order: whether to keep it.
    pub(crate) fn keep(&mut self) -> bool {
        if self.remaining == 0 {
            return false;
        }
        // A uniform draw in [0, 1) from the top 53 bits.
        let u = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let keep = (self.remaining as f64) * u < self.wanted as f64;
        self.remaining -= 1;
        if keep {
            self.wanted -= 1;
        }
        keep
    }
}

/// The seed of a template's sampler: its own `seed`, else one derived from the suite seed and
/// the template's name, so two templates never draw the same sequence.
pub(crate) fn derive_seed(suite_seed: u64, template: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(suite_seed.to_le_bytes())
        .chain_update(template.as_bytes())
        .finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(seed: u64, wanted: u64, total: u64) -> Vec<u64> {
        let mut s = Selection::new(seed, wanted, total);
        (0..total).filter(|_| s.keep()).collect()
    }

    #[test]
    fn picks_exactly_n_in_order() {
        for (n, total) in [(0, 10), (1, 1), (3, 10), (10, 10), (15, 10), (500, 100_000)] {
            let p = picks(7, n, total);
            assert_eq!(p.len() as u64, n.min(total));
            assert!(p.windows(2).all(|w| w[0] < w[1]));
        }
    }

    /// Golden values: changing these changes every sampled suite ever compiled.
    #[test]
    fn golden_values() {
        assert_eq!(picks(42, 5, 100), [24, 42, 60, 64, 85]);
        assert_eq!(picks(2023, 3, 20), [1, 14, 19]);
        assert_eq!(derive_seed(0, "t"), 1651521875746560944);
    }

    #[test]
    fn roughly_uniform() {
        let mut hits = [0u32; 10];
        for seed in 0..2000 {
            for i in picks(seed, 3, 10) {
                hits[i as usize] += 1;
            }
        }
        // Each position is picked with probability 0.3: 600 of 2000 on average.
        assert!(hits.iter().all(|&h| (520..680).contains(&h)), "{hits:?}");
    }
}
