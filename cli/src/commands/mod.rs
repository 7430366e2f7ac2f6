//! One module per `mpaka` command that is more than a call into a library:
//! each parses nothing (clap does, in `main.rs`) and prints what a person
//! at a terminal needs.

pub mod admin;
pub mod demo;
pub mod export;
pub mod form;
pub mod inspect;
