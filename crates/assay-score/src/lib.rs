//! `assay-score`: the arithmetic behind metrics and grades, kept apart so it can be checked
//! against published references: confidence intervals (`interval.rs`) and the AILuminate v1.0
//! and MLCommons v0.5 grade scales with their overall-grade rules (`grade.rs`). Pure: numbers
//! in, numbers out. Evaluating a spec's metric expressions over run results builds on it.

pub mod grade;
pub mod interval;

pub use grade::{Grade, HazardResult, Scale, grade, overall};
pub use interval::{Estimate, bootstrap_mean, clopper_pearson, wilson};
