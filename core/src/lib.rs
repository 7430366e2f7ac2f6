//! mpaka-core: the offline store of mpaka.
//!
//! Field enumerators at the Rusizi/Bukavu crossing record traders, survey
//! interviews, awareness sessions and attendance on phones that are offline
//! for days and whose clocks are often wrong. This crate keeps what they
//! record in a local SQLite file as an append-only log of [`Op`]s stamped
//! with hybrid logical clocks ([`Hlc`]), and merges ops from any number of
//! replicas into the same state whatever order they arrive in, recording
//! concurrent edits as [`Conflict`]s instead of hiding them.
//!
//! ```
//! use mpaka_core::{Collection, EntityId, Store, StoreOptions};
//! use serde_json::json;
//!
//! let store = Store::open_in_memory(StoreOptions::default())?;
//! let trader = EntityId::random();
//! store.save(
//!     Collection::Traders,
//!     trader,
//!     serde_json::from_value(json!({
//!         "full_name": "Uwimana Claudine",
//!         "sex": "female",
//!         "border_post": "rusizi_2",
//!         "consent_given": true,
//!     }))?,
//! )?;
//! let found = store.get(Collection::Traders, trader)?.expect("just saved");
//! assert_eq!(found.get("border_post"), Some(&json!("rusizi_2")));
//! assert_eq!(store.pending_count()?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See ARCHITECTURE.md at the repository root for the invariants.

pub mod answers;
pub mod error;
pub mod form;
pub mod hlc;
pub mod merge;
pub mod op;
pub mod registry;
pub mod sample;
pub mod schema;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
pub use hlc::{Hlc, ManualClock, NodeId, SystemClock, WallClock};
pub use merge::{Conflict, ConflictingWrite, EntityState};
pub use op::{Attendee, EntityId, Op, OpId, attendance_id};
pub use schema::{Collection, CollectionSchema, FieldKind, FieldSpec, Fields, MergePolicy};
pub use store::{
    ApplyReport, Durability, Entity, Filter, HeldOp, Query, RejectedOp, SCHEMA_VERSION, Scanned, Store, StoreKey,
    StoreOptions, StoredConflict, SyncExchange,
};
