//! mpaka-simulator: the product's test rig, apart from the product.
//!
//! - [`run`] plays a field day: enumerator and M&E devices (each a real
//!   core store file) work offline with realistic overlaps, then sync to a
//!   real server at random moments, optionally through unreliable links
//!   and with wrong clocks; afterwards the stores are compared, not
//!   assumed equal. `mpaka simulate` is its command line.
//! - [`faulty_link`] is a TCP proxy that drops, cuts, delays and throttles
//!   what crosses it: 2G at the border, for tests and benches.
//!
//! The sync benches (`benches/`) and the cross-process scenarios under
//! `tests/` drive the server through it. Nothing here is linked into the
//! server library or the phone library.

pub mod faulty_link;
mod field_day;

pub use field_day::{AdminClient, LocalServer, OffsetClock, SimConfig, SimDevice, SimError, SimReport, compare, run};
