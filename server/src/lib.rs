//! mpaka-server: the sync server devices reach when connectivity returns,
//! and its administration.
//!
//! - [`accounts`]: projects, users, roles, devices, tokens, enrollment.
//! - [`exchange`]: one sync exchange, independent of HTTP.
//! - [`export`]: the merged data as CSV, XLSX or JSON lines tables.
//! - [`http`]: the axum application: routes, authorization, limits.
//! - [`indicators`]: attendance, women reached, surveys per day, harassment.
//! - [`review`]: conflicts resolved and duplicate traders merged, as ops.
//! - [`server`]: the data folder, first start, serving and shutdown.
//! - [`storage`]: where projects' ops live: SQLite files or PostgreSQL.
//!
//! The `mpaka` command is the `mpaka-cli` crate; the field-day simulator
//! and its fault-injecting link are `mpaka-simulator`: neither is linked
//! into this library.

pub mod accounts;
pub mod exchange;
pub mod export;
pub mod http;
pub mod indicators;
pub mod review;
pub mod server;
pub mod sql;
pub mod storage;
