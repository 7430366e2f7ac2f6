//! Operations: the unit of change, of storage and of sync.
//!
//! One save of many fields is one [`Op`]. Ops are immutable once issued and
//! identified by a random [`OpId`], which is what makes applying them
//! idempotent: an op seen twice is applied once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::hlc::{Hlc, MAX_WALL_MS};
use crate::schema::{Collection, Fields};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(pub Uuid);

        impl $name {
            pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self> {
                Uuid::from_slice(bytes).map($name).map_err(|e| Error::Corrupt(format!(concat!($kind, " id: {}"), e)))
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Uuid::try_parse(s).map($name).map_err(|e| Error::MalformedId {
                    kind: $kind,
                    value: s.chars().take(64).collect(),
                    reason: e.to_string(),
                })
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

uuid_id!(
    /// Identifies an op across all replicas. Time-ordered (UUIDv7) so that
    /// the op log's index grows at its end.
    OpId,
    "op"
);
uuid_id!(
    /// Identifies an entity (a trader, a submission, ...) across all replicas.
    EntityId,
    "entity"
);

impl OpId {
    /// A fresh op id.
    pub fn new() -> Self {
        OpId(Uuid::now_v7())
    }
}

impl Default for OpId {
    fn default() -> Self {
        Self::new()
    }
}

impl EntityId {
    /// A fresh random entity id.
    pub fn random() -> Self {
        EntityId(Uuid::new_v4())
    }
}

/// One change to one entity: the fields written, stamped with the writer's
/// clock and with the version of the entity the writer saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Unique id; applying the same id twice is a no-op.
    pub id: OpId,
    /// When, in hybrid logical time, the write happened.
    pub hlc: Hlc,
    /// The entity version the writer saw (the greatest stamp among its
    /// fields), or `None` if the writer created the entity. Ops whose
    /// base covers another op's stamp are not concurrent with it.
    pub base: Option<Hlc>,
    /// The collection of the entity.
    pub collection: Collection,
    /// The entity written.
    pub entity: EntityId,
    /// Field path to value; `null` clears a field.
    pub fields: Fields,
}

impl Op {
    /// Did the writer of `self` see `other` (its base covers `other`'s stamp)?
    pub fn saw(&self, other: &Op) -> bool {
        self.saw_stamp(other.hlc)
    }

    /// Did the writer of `self` see the entity at `stamp` or later?
    pub fn saw_stamp(&self, stamp: Hlc) -> bool {
        self.base.is_some_and(|base| base >= stamp)
    }

    /// Neither writer saw the other's op.
    pub fn concurrent_with(&self, other: &Op) -> bool {
        !self.saw(other) && !other.saw(self)
    }

    /// Checks every field against the collection's schema.
    pub fn validate(&self) -> Result<()> {
        let schema = self.collection.schema();
        if self.fields.is_empty() {
            return Err(Error::EmptyWrite {
                collection: schema.name,
            });
        }
        if self.hlc.wall_ms >= MAX_WALL_MS {
            return Err(Error::MalformedClock {
                value: self.hlc.to_string(),
                reason: format!("wall time must be below {MAX_WALL_MS} ms"),
            });
        }
        if self.base.is_some_and(|base| base >= self.hlc) {
            return Err(Error::MalformedClock {
                value: self.hlc.to_string(),
                reason: format!("op {} claims to have seen a version at or after its own stamp", self.id),
            });
        }
        self.fields
            .iter()
            .try_for_each(|(path, value)| schema.check(path, value))
    }
}

/// Who attended a session: a registered trader, or a walk-in known only by
/// a name or code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attendee {
    /// A trader in the registry.
    Trader(EntityId),
    /// Someone not in the registry.
    WalkIn {
        /// Name or code as written on the attendance sheet.
        name_or_code: String,
    },
}

/// Namespace of derived attendance ids (UUIDv5).
const ATTENDANCE_NAMESPACE: Uuid = Uuid::from_u128(0x6d70_616b_6101_4a77_9f2e_6174_7465_6e64);

/// The id of the attendance row of `attendee` at `session`. Two devices
/// registering the same person at the same session compute the same id, so
/// their rows merge into one instead of being counted twice. Walk-in names
/// are compared case-insensitively with spaces collapsed.
pub fn attendance_id(session: EntityId, attendee: &Attendee) -> EntityId {
    let key = match attendee {
        Attendee::Trader(trader) => format!("{session}/trader/{trader}"),
        Attendee::WalkIn { name_or_code } => {
            let normalized = name_or_code
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            format!("{session}/walk-in/{normalized}")
        }
    };
    EntityId(Uuid::new_v5(&ATTENDANCE_NAMESPACE, key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attendance_ids_converge_for_the_same_person() {
        let session = EntityId::random();
        let trader = EntityId::random();
        assert_eq!(
            attendance_id(session, &Attendee::Trader(trader)),
            attendance_id(session, &Attendee::Trader(trader))
        );
        let walk_in = |name: &str| {
            attendance_id(
                session,
                &Attendee::WalkIn {
                    name_or_code: name.into(),
                },
            )
        };
        assert_eq!(walk_in("Mukamana  Aline"), walk_in(" mukamana aline "));
        assert_ne!(walk_in("Mukamana Aline"), walk_in("Mukamana Alice"));
        assert_ne!(
            attendance_id(EntityId::random(), &Attendee::Trader(trader)),
            attendance_id(session, &Attendee::Trader(trader))
        );
    }

    #[test]
    fn malformed_ids_name_the_kind_and_value() {
        let err = "not-a-uuid".parse::<EntityId>().unwrap_err().to_string();
        assert!(err.contains("entity") && err.contains("not-a-uuid"), "{err}");
        let err = serde_json::from_str::<OpId>("\"123\"").unwrap_err().to_string();
        assert!(err.contains("op id"), "{err}");
    }
}
