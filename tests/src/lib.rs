//! Shared helpers for mpaka's end-to-end tests.

pub use mpaka_core::sample::{baseline_submission, survey_answers};
