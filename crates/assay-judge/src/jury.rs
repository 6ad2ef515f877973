//! Juries (`rule = jury`): several score judges score the same response and their scores are
//! reduced to one, as PoLL's panels of judge models are. A member that gave no score (its call
//! or its parsing failed, or it does not apply) is left out; fewer than `min_valid` scores
//! leave no jury score.

/// How a jury's scores become one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Mean,
    /// The middle score; with an even number, the mean of the two middle ones.
    Median,
}

impl Reduce {
    pub fn parse(word: &str) -> Option<Reduce> {
        match word {
            "mean" => Some(Reduce::Mean),
            "median" => Some(Reduce::Median),
            _ => None,
        }
    }
}

/// The jury's score from its members' scores (`None` for a member that gave none), or why
/// there is none: fewer than `min_valid` (at least one) members scored.
pub fn jury(scores: &[Option<f64>], reduce: Reduce, min_valid: usize) -> Result<f64, String> {
    let mut valid: Vec<f64> = scores
        .iter()
        .flatten()
        .copied()
        .filter(|s| s.is_finite())
        .collect();
    let needed = min_valid.max(1);
    if valid.len() < needed {
        return Err(format!(
            "{} member{} of {} scored, {needed} needed",
            valid.len(),
            if valid.len() == 1 { "" } else { "s" },
            scores.len()
        ));
    }
    Ok(match reduce {
        Reduce::Mean => valid.iter().sum::<f64>() / valid.len() as f64,
        Reduce::Median => {
            valid.sort_by(f64::total_cmp);
            let mid = valid.len() / 2;
            if valid.len() % 2 == 1 {
                valid[mid]
            } else {
                (valid[mid - 1] + valid[mid]) / 2.0
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_median_over_the_members_that_scored() {
        let scores = [Some(1.0), Some(4.0), Some(5.0)];
        assert_eq!(jury(&scores, Reduce::Mean, 1).unwrap(), 10.0 / 3.0);
        assert_eq!(jury(&scores, Reduce::Median, 1).unwrap(), 4.0);
        // A member without a score is dropped: the median of two is their mean.
        let failed = [Some(2.0), None, Some(5.0)];
        assert_eq!(jury(&failed, Reduce::Median, 2).unwrap(), 3.5);
        assert_eq!(jury(&failed, Reduce::Mean, 2).unwrap(), 3.5);
        let four = [Some(5.0), Some(1.0), Some(2.0), Some(4.0)];
        assert_eq!(jury(&four, Reduce::Median, 1).unwrap(), 3.0);
    }

    #[test]
    fn too_few_scores_is_no_score() {
        let e = jury(&[Some(2.0), None, None], Reduce::Mean, 2).unwrap_err();
        assert_eq!(e, "1 member of 3 scored, 2 needed");
        // min_valid 0 still needs one score: a mean of nothing is no score.
        assert!(jury(&[None, None], Reduce::Median, 0).is_err());
        assert!(jury(&[Some(f64::NAN)], Reduce::Mean, 1).is_err());
    }
}
