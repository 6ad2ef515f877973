//! The scoring tests, in one binary: metrics, grades, comparison, and properties of the
//! intervals `summarize` reports.

mod applicability;
mod compare;
mod grades;
mod metrics;
mod modelbench;
mod properties;
mod support;
mod turns;
