//! The sync protocol: what a device and the server exchange, shared by the
//! client and the server so the two cannot drift apart. The client moves
//! bytes over an [`HttpTransport`]: the bundled reqwest one (feature
//! `sync`) or the app's own.
//!
//! One exchange is one `POST /v1/sync` with a gzip-compressed JSON
//! [`SyncRequest`] and a gzip-compressed JSON [`SyncResponse`]: the device
//! pushes ops the server has not acknowledged and, in the same round trip,
//! pulls ops it has not seen since its cursor. docs/protocol.md describes
//! the exchange for people; this module is its definition.

mod client;
#[cfg(feature = "sync")]
mod reqwest_transport;
mod session;
pub mod transport;
mod wire;

use serde::{Deserialize, Serialize};

pub use self::client::{CancelToken, Enrollment, SyncClient, SyncConfig, SyncProgress};
#[cfg(feature = "sync")]
pub use self::reqwest_transport::ReqwestTransport;
pub use self::session::{Progress, ProtocolError, SyncError, SyncReport, SyncSession};
pub use self::transport::{HttpRequest, HttpResponse, HttpTransport, TransportError};
pub use self::wire::{WireError, gunzip_limited, gzip};
use crate::form::FormDefinition;
use crate::op::{Op, OpId};

/// The protocol version this build speaks (the `/v1/` of the paths).
pub const PROTOCOL_VERSION: u32 = 1;

/// The revision of protocol 1 this build speaks, sent as
/// [`SyncRequest::revision`]: what a device understands beyond the first
/// release, so a server never sends a device something it cannot decode.
///
/// - 1 (or absent): the first release.
/// - 2: rejection code `too_large`, and any rejection code this build does
///   not know reads as [`RejectionCode::Other`] instead of failing.
/// - 3: repeat instances as their own fields and derived values
///   ([`crate::answers`]); a server sends ops writing them only to devices
///   of this revision or later ([`REVISION_INSTANCE_FIELDS`]).
pub const PROTOCOL_REVISION: u32 = 3;

/// The first revision that reads repeat instances as their own fields
/// (`answers/goods[k2x]/price`) and `derived/` values.
pub const REVISION_INSTANCE_FIELDS: u32 = 3;

/// Default size of one exchange on the wire, compressed: about 256 KB,
/// a couple of seconds on a good 2G link, small enough that a dropped
/// connection costs little.
pub const DEFAULT_BATCH_BYTES: usize = 256 * 1024;

/// The content type of every request and response body.
pub const CONTENT_TYPE: &str = "application/json";

/// A form the device holds, so the server sends only those it lacks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FormRef {
    /// `settings.form_id`.
    pub form_id: String,
    /// `settings.version`.
    pub version: String,
}

/// What a device sends. `O` is [`Op`] on the device; the server reads each
/// op as raw JSON first, so one malformed op is refused alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest<O = Op> {
    /// [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The server sequence up to which the device holds every op it may
    /// see (0 at first).
    pub cursor: u64,
    /// Ops written on the device and not yet acknowledged, oldest first.
    pub ops: Vec<O>,
    /// Forms the device already holds.
    #[serde(default)]
    pub forms: Vec<FormRef>,
    /// How many bytes of ops (uncompressed JSON) to pull at most in this
    /// exchange; the server sends at least one op if any is due.
    pub pull_limit_bytes: u64,
    /// The device's own clock when it sent the request (ms), uncorrected:
    /// the server records how far off the device's clock is, for the
    /// officers who look after the devices. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_time_ms: Option<u64>,
    /// How many of the device's ops still wait for a later request
    /// (written there, never acknowledged, not in this one), as the device
    /// counted them when it sent this one: the dashboard shows it per
    /// device, so officers see a phone whose sync keeps being cut.
    /// Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_ops: Option<u64>,
    /// [`PROTOCOL_REVISION`] of the device's build; absent from devices of
    /// the first release, which are sent only what they decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
}

/// What the server answers. `O` is [`Op`] on the device; the server sends
/// the pulled ops as the JSON it already wrote while sizing the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse<O = Op> {
    /// The server's wall clock (ms since the epoch) when it answered.
    pub server_time_ms: u64,
    /// Pushed ops the server now holds (new or already held): the device
    /// acknowledges them.
    pub accepted: Vec<OpId>,
    /// Pushed ops the server refused, each with why.
    pub rejected: Vec<Rejection>,
    /// Ops for the device, in server order.
    pub ops: Vec<O>,
    /// The cursor to send next time: covers `ops` and every op before them
    /// the device may not see.
    pub cursor: u64,
    /// More ops are due: exchange again.
    pub more: bool,
    /// Forms of the project the device did not list.
    pub forms: Vec<FormDefinition>,
}

/// One refused op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The op.
    pub op: OpId,
    /// Why, for programs.
    pub code: RejectionCode,
    /// Why, for a person: which field, form or clock, and what to do.
    pub reason: String,
}

/// Why the server refused an op.
///
/// Read from any string: a code a later server adds reads as
/// [`RejectionCode::Other`] (the reason still says why), so a new code
/// never stops an older device from syncing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", from = "String")]
pub enum RejectionCode {
    /// Stamped too far ahead of the server's clock: the device's clock is
    /// wrong.
    ClockAhead,
    /// Not an op of this protocol (unknown collection, bad id or stamp).
    Malformed,
    /// A field the collection does not declare, or a value of the wrong
    /// kind.
    InvalidField,
    /// A submission of a form (or form version) the project never
    /// published.
    UnknownForm,
    /// A submission whose answers break the form's rules.
    InvalidAnswers,
    /// The device may not write this: another device's node id, or another
    /// enumerator's submission.
    Forbidden,
    /// The op id is already held for a different op.
    OpIdReused,
    /// The op is larger than the server accepts: too many bytes, answers
    /// or repeat instances, or answers too costly to check. Sending it
    /// again will not help; the reason names the limit. Sent to devices of
    /// [`PROTOCOL_REVISION`] 2 and later; older ones get `invalid_field`.
    TooLarge,
    /// A code this build does not know (a later server's).
    Other,
}

impl From<String> for RejectionCode {
    fn from(code: String) -> Self {
        RejectionCode::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or(RejectionCode::Other)
    }
}

impl RejectionCode {
    /// The code as stored and sent (`clock_ahead`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::ClockAhead => "clock_ahead",
            RejectionCode::Malformed => "malformed",
            RejectionCode::InvalidField => "invalid_field",
            RejectionCode::UnknownForm => "unknown_form",
            RejectionCode::InvalidAnswers => "invalid_answers",
            RejectionCode::Forbidden => "forbidden",
            RejectionCode::OpIdReused => "op_id_reused",
            RejectionCode::TooLarge => "too_large",
            RejectionCode::Other => "other",
        }
    }

    /// Every code but [`RejectionCode::Other`].
    pub const ALL: [RejectionCode; 8] = [
        RejectionCode::ClockAhead,
        RejectionCode::Malformed,
        RejectionCode::InvalidField,
        RejectionCode::UnknownForm,
        RejectionCode::InvalidAnswers,
        RejectionCode::Forbidden,
        RejectionCode::OpIdReused,
        RejectionCode::TooLarge,
    ];

    /// The code as a device of `revision` ([`PROTOCOL_REVISION`]) can read
    /// it: the first release knows no `too_large`, and refusing it as a
    /// field beyond bounds is the nearest it does know.
    pub fn for_revision(self, revision: Option<u32>) -> RejectionCode {
        match self {
            RejectionCode::TooLarge if revision.unwrap_or(1) < 2 => RejectionCode::InvalidField,
            code => code,
        }
    }

    /// The code for a store error refusing an op.
    pub fn of(error: &crate::Error) -> RejectionCode {
        use crate::Error as E;
        match error {
            E::ClockTooFarAhead { .. } => RejectionCode::ClockAhead,
            E::OpIdReused { .. } => RejectionCode::OpIdReused,
            E::UnknownCollection { .. } | E::MalformedId { .. } | E::MalformedClock { .. } | E::IdRule { .. } => {
                RejectionCode::Malformed
            }
            _ => RejectionCode::InvalidField,
        }
    }
}

/// The body of every error response (4xx and 5xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable: `unauthorized`, `forbidden`, `bad_request`, ...
    pub error: String,
    /// For a person: what was wrong and what to do.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_codes_serialize_as_their_names() {
        for code in RejectionCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
            assert_eq!(serde_json::from_value::<RejectionCode>(json).unwrap(), code);
        }
    }

    #[test]
    fn a_code_from_a_later_server_reads_as_other_and_old_devices_get_codes_they_know() {
        let rejection: Rejection =
            serde_json::from_str(r#"{"op": "00000000-0000-4000-8000-000000000000", "code": "quota", "reason": "x"}"#)
                .unwrap();
        assert_eq!(rejection.code, RejectionCode::Other);
        assert_eq!(RejectionCode::TooLarge.for_revision(None), RejectionCode::InvalidField);
        assert_eq!(
            RejectionCode::TooLarge.for_revision(Some(1)),
            RejectionCode::InvalidField
        );
        assert_eq!(
            RejectionCode::TooLarge.for_revision(Some(PROTOCOL_REVISION)),
            RejectionCode::TooLarge
        );
        assert_eq!(RejectionCode::Forbidden.for_revision(None), RejectionCode::Forbidden);
    }
}
