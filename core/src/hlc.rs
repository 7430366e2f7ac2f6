//! Hybrid logical clocks: timestamps that order every edit without trusting
//! any one phone's wall clock.
//!
//! An [`Hlc`] is `(wall milliseconds, counter, node)`. A node's clock never
//! goes backwards, even when the phone's wall clock does (battery pulled,
//! SIM swapped), because [`HlcState::tick`] takes the larger of the wall
//! clock and the last stamp it issued, and the last stamp is persisted with
//! every write. Receiving a remote stamp moves the local clock past it, so a
//! later local edit always orders after what this node has seen.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Largest wall time an [`Hlc`] may carry (exclusive): 2^47 ms, about the
/// year 6429. Keeps the packed form a positive `i64` so that SQLite orders
/// it correctly.
pub const MAX_WALL_MS: u64 = 1 << 47;

/// The replica that issued an op: one per store (one per phone install, one
/// per server). Random, so that two phones never share one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl NodeId {
    /// A fresh random node id.
    pub fn random() -> Self {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        NodeId(u64::from_be_bytes(first))
    }

    /// The id as SQLite stores it: shifted into `i64` so that SQLite's
    /// signed comparison orders node ids as `u64` does.
    pub fn to_sql(self) -> i64 {
        (self.0 ^ (1 << 63)) as i64
    }

    /// The inverse of [`NodeId::to_sql`].
    pub fn from_sql(raw: i64) -> Self {
        NodeId((raw as u64) ^ (1 << 63))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 16 {
            return Err(Error::MalformedClock {
                value: s.to_owned(),
                reason: "a node id is 16 hexadecimal digits".into(),
            });
        }
        u64::from_str_radix(s, 16)
            .map(NodeId)
            .map_err(|_| Error::MalformedClock {
                value: s.to_owned(),
                reason: "a node id is 16 hexadecimal digits".into(),
            })
    }
}

/// A hybrid logical clock timestamp.
///
/// Ordered by wall time, then counter, then node: the derived `Ord` is the
/// total order that decides every last-writer-wins race, on every replica.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch, as the issuing node believed it.
    pub wall_ms: u64,
    /// Distinguishes stamps issued within the same millisecond.
    pub counter: u16,
    /// The node that issued the stamp; breaks ties between nodes.
    pub node: NodeId,
}

impl Hlc {
    /// Refuses a stamp more than `max_ahead_ms` past `now_ms` (or past the
    /// last representable millisecond): one phone whose clock says 2031
    /// must not win every race. The clock rule itself, and what *now* is
    /// for each replica, is in `merge/plan.rs`.
    pub fn check_not_ahead(self, now_ms: u64, max_ahead_ms: u64) -> Result<()> {
        if self.wall_ms >= MAX_WALL_MS || self.wall_ms > now_ms.saturating_add(max_ahead_ms) {
            return Err(Error::ClockTooFarAhead {
                node: self.node,
                stamp: self,
                ahead_ms: self.wall_ms.saturating_sub(now_ms),
                bound_ms: max_ahead_ms,
            });
        }
        Ok(())
    }
    /// Builds a stamp, refusing wall times past [`MAX_WALL_MS`].
    pub fn new(wall_ms: u64, counter: u16, node: NodeId) -> Result<Self> {
        if wall_ms >= MAX_WALL_MS {
            return Err(Error::MalformedClock {
                value: wall_ms.to_string(),
                reason: format!("wall time must be below {MAX_WALL_MS} ms"),
            });
        }
        Ok(Hlc { wall_ms, counter, node })
    }

    /// `(wall << 16) | counter`: one integer that sorts like the stamp
    /// (node aside), so databases can compare and index it.
    pub fn packed(self) -> i64 {
        ((self.wall_ms << 16) | u64::from(self.counter)) as i64
    }

    /// The stamp [`Hlc::packed`] and [`NodeId::to_sql`] stored.
    pub fn from_packed(packed: i64, node: i64) -> Self {
        let packed = packed as u64;
        Hlc {
            wall_ms: packed >> 16,
            counter: (packed & 0xffff) as u16,
            node: NodeId::from_sql(node),
        }
    }
}

impl fmt::Display for Hlc {
    /// `wall-counter-node`, e.g. `1764230400000-0003-9f3c2a1b4d5e6f70`:
    /// sorts as text in the same order as the stamps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:015}-{:04x}-{}", self.wall_ms, self.counter, self.node)
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hlc({self})")
    }
}

impl FromStr for Hlc {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::MalformedClock {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = s.split('-');
        let (Some(wall), Some(counter), Some(node), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                "expected wall-counter-node, e.g. 1764230400000-0003-9f3c2a1b4d5e6f70",
            ));
        };
        let wall = wall
            .parse::<u64>()
            .map_err(|_| bad("wall time is not a number of milliseconds"))?;
        let counter = u16::from_str_radix(counter, 16).map_err(|_| bad("counter is not 4 hex digits"))?;
        Hlc::new(wall, counter, node.parse()?)
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where the store reads the time. The system clock in the field; a
/// [`ManualClock`] in tests and simulations, where phones' clocks must be
/// wrong on purpose.
pub trait WallClock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> u64 {
        let now = chrono::Utc::now().timestamp_millis();
        u64::try_from(now).unwrap_or(0)
    }
}

/// A clock that moves only when told: for tests and simulated devices.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn at(ms: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// Sets the time, forwards or backwards.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forwards by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl WallClock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The last stamp a node issued or observed: the whole state of its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HlcState {
    last_wall: u64,
    last_counter: u16,
    node: NodeId,
}

impl HlcState {
    /// A clock that has issued nothing yet.
    pub fn new(node: NodeId) -> Self {
        HlcState {
            last_wall: 0,
            last_counter: 0,
            node,
        }
    }

    /// Resumes a clock from its persisted last stamp.
    pub fn resume(last: Hlc) -> Self {
        HlcState {
            last_wall: last.wall_ms,
            last_counter: last.counter,
            node: last.node,
        }
    }

    /// Moves the clock past `seen` (a stamp of this node, persisted by
    /// another handle on the same store).
    pub fn advance_to(&mut self, seen: Hlc) {
        if (seen.wall_ms, seen.counter) > (self.last_wall, self.last_counter) {
            self.last_wall = seen.wall_ms;
            self.last_counter = seen.counter;
        }
    }

    /// The node this clock stamps for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The last stamp issued or observed.
    pub fn last(&self) -> Hlc {
        Hlc {
            wall_ms: self.last_wall,
            counter: self.last_counter,
            node: self.node,
        }
    }

    /// Issues a stamp greater than every stamp issued or observed before,
    /// whatever the wall clock says.
    pub fn tick(&mut self, wall_now_ms: u64) -> Hlc {
        let wall_now_ms = wall_now_ms.min(MAX_WALL_MS - 1);
        if wall_now_ms > self.last_wall {
            self.last_wall = wall_now_ms;
            self.last_counter = 0;
        } else if self.last_counter == u16::MAX {
            // 65,536 stamps in one millisecond: borrow the next millisecond
            // (never past MAX_WALL_MS, about the year 6429).
            self.last_wall = (self.last_wall + 1).min(MAX_WALL_MS - 1);
            self.last_counter = 0;
        } else {
            self.last_counter += 1;
        }
        self.last()
    }

    /// Takes note of a remote stamp so that later local stamps order after
    /// it. Refuses stamps more than `max_ahead_ms` ahead of the local wall
    /// clock: one phone whose clock says 2031 must not win every race.
    ///
    /// "Now" is this clock's own idea of it, the later of the wall clock and
    /// the last stamp: a phone whose battery was pulled and whose wall clock
    /// fell back to 2024 still accepts the 2026 ops it synced before.
    pub fn observe(&mut self, remote: Hlc, wall_now_ms: u64, max_ahead_ms: u64) -> Result<()> {
        remote.check_not_ahead(wall_now_ms.max(self.last_wall), max_ahead_ms)?;
        if (remote.wall_ms, remote.counter) > (self.last_wall, self.last_counter) {
            self.last_wall = remote.wall_ms;
            self.last_counter = remote.counter;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: NodeId = NodeId(0xabc);

    #[test]
    fn tick_is_monotonic_when_the_wall_clock_jumps_backwards() {
        let mut clock = HlcState::new(NODE);
        let a = clock.tick(1_000_000);
        let b = clock.tick(1_000_000);
        let c = clock.tick(5); // battery pulled: the phone thinks it is 1970
        let d = clock.tick(1_000_001);
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!(c.wall_ms, 1_000_000);
        assert_eq!(d.wall_ms, 1_000_001);
        assert_eq!(d.counter, 0);
    }

    #[test]
    fn counter_overflow_borrows_the_next_millisecond() {
        let mut clock = HlcState::resume(Hlc::from_packed((7 << 16) | 0xffff, NODE.to_sql()));
        let next = clock.tick(7);
        assert_eq!((next.wall_ms, next.counter), (8, 0));
    }

    #[test]
    fn observing_moves_past_remote_stamps_within_the_bound() {
        let mut clock = HlcState::new(NODE);
        clock.tick(1_000);
        let remote = Hlc::new(5_000, 9, NodeId(1)).unwrap();
        clock.observe(remote, 1_000, 10_000).unwrap();
        assert!(clock.tick(1_000) > remote);
    }

    #[test]
    fn the_bound_counts_from_the_clocks_own_now_not_a_wall_clock_that_fell_back() {
        let day = 24 * 3600 * 1000;
        let mut clock = HlcState::new(NODE);
        clock.tick(1_000 * day); // synced in 2026-ish
        let remote = Hlc::new(1_000 * day + 5, 0, NodeId(7)).unwrap();
        // Battery pulled: the wall clock now says day 10.
        clock.observe(remote, 10 * day, day).unwrap();
        assert!(clock.tick(10 * day) > remote);
    }

    #[test]
    fn far_future_remote_stamp_is_refused_naming_the_node() {
        let mut clock = HlcState::new(NODE);
        let day = 24 * 3600 * 1000;
        let remote = Hlc::new(1_000 + day + 1, 0, NodeId(0x2031)).unwrap();
        let err = clock.observe(remote, 1_000, day).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("0000000000002031"), "{text}");
        assert!(matches!(err, Error::ClockTooFarAhead { .. }));
        // The refused stamp did not move the clock.
        assert!(clock.tick(1_000) < remote);
    }

    #[test]
    fn text_form_round_trips_and_sorts_like_the_stamp() {
        let a = Hlc::new(1_764_230_400_000, 3, NodeId(0x9f3c)).unwrap();
        let b = Hlc::new(1_764_230_400_000, 16, NodeId(0x1)).unwrap();
        assert_eq!(a.to_string().parse::<Hlc>().unwrap(), a);
        assert!(a < b && a.to_string() < b.to_string());
        assert!(a.packed() < b.packed());
        assert_eq!(Hlc::from_packed(a.packed(), a.node.to_sql()), a);
        // SQLite compares node ids as signed integers: the mapping keeps their order.
        let (low, high) = (NodeId(1), NodeId(u64::MAX));
        assert!(low.to_sql() < high.to_sql());
        assert_eq!(NodeId::from_sql(high.to_sql()), high);
    }

    #[test]
    fn malformed_stamps_are_typed_errors() {
        for bad in [
            "",
            "12-0001",
            "x-0001-0000000000000001",
            "1-zz-0000000000000001",
            "1-0001-12",
        ] {
            assert!(matches!(bad.parse::<Hlc>(), Err(Error::MalformedClock { .. })), "{bad}");
        }
        assert!(Hlc::new(MAX_WALL_MS, 0, NODE).is_err());
    }
}
