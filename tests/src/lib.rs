//! Shared helpers for mpaka's end-to-end tests: a real `mpaka serve`
//! process on 127.0.0.1 and devices with real store files syncing to it.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used, missing_docs)] // test support: a failure is a failed test

pub mod server;

pub use mpaka_core::sample::{baseline_submission, survey_answers};
pub use server::{Device, TestServer};
