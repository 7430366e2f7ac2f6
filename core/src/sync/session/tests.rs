//! The sync session without HTTP: each test plays the server by hand.

use super::*;
use crate::sample;
use crate::store::StoreOptions;
use crate::{Collection, EntityId};

/// A device store holding `n` registered traders not yet synced.
fn device(n: u64) -> Store {
    let store = Store::open_in_memory(StoreOptions::default()).unwrap();
    for i in 0..n {
        store
            .save(Collection::Traders, EntityId::random(), sample::trader(i))
            .unwrap();
    }
    store
}

/// What a request carries.
fn decode(body: &[u8]) -> SyncRequest<Op> {
    serde_json::from_slice(&super::super::gunzip_limited(body, 64 << 20).unwrap()).unwrap()
}

/// A server that accepts every op pushed and has nothing to pull.
fn accepting(request: &SyncRequest<Op>, store: &Store, more: bool) -> SyncResponse {
    SyncResponse {
        server_time_ms: store.wall_clock_ms(),
        accepted: request.ops.iter().map(|op| op.id).collect(),
        rejected: Vec::new(),
        ops: Vec::new(),
        cursor: request.cursor + u64::from(more),
        more,
        forms: Vec::new(),
    }
}

fn clock(store: &Store) -> ClockSample {
    let now = store.wall_clock_ms();
    ClockSample {
        server_time_ms: now,
        sent_at_ms: now,
        received_at_ms: now,
    }
}

/// Drives `session` against [`accepting`] to the end; the requests made.
fn run(session: &mut SyncSession<'_>, store: &Store) -> Vec<SyncRequest<Op>> {
    let mut requests = Vec::new();
    while let Some(body) = session.next_request().unwrap() {
        let request = decode(&body);
        session
            .receive(accepting(&request, store, false), 4.0, clock(store))
            .unwrap();
        requests.push(request);
        assert!(requests.len() < 1_000, "the session never stops");
    }
    requests
}

#[test]
fn a_device_that_never_learned_the_servers_time_asks_before_it_sends() {
    let store = device(3);
    let mut session = SyncSession::new(&store, 64 << 10).unwrap();
    let requests = run(&mut session, &store);
    assert_eq!(requests.len(), 2, "a handshake, then the ops");
    assert!(requests[0].ops.is_empty());
    assert_eq!(requests[1].ops.len(), 3);
    assert!(session.is_done() && session.next_request().unwrap().is_none());
    assert_eq!(session.into_report().pushed, 3);
    assert_eq!(store.pending_count().unwrap(), 0);
    // The next sync knows the server's time: no handshake, one exchange.
    let mut again = SyncSession::new(&store, 64 << 10).unwrap();
    assert_eq!(run(&mut again, &store).len(), 1);
}

#[test]
fn batches_fit_the_wire_budget_and_together_hold_every_op() {
    let store = device(300);
    let mut session = SyncSession::new(&store, 2_000).unwrap();
    let requests = run(&mut session, &store);
    let sizes: Vec<usize> = requests.iter().map(|r| r.ops.len()).filter(|&n| n > 0).collect();
    assert!(sizes.len() > 3, "300 traders in 2 KB exchanges take several: {sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 300);
    let mut ids: Vec<_> = requests.iter().flat_map(|r| r.ops.iter().map(|op| op.id)).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 300, "no op is sent twice when every exchange is answered");
    assert_eq!(session.into_report().pushed, 300);
}

#[test]
fn an_exchange_cut_before_its_response_is_sent_again_whole() {
    let store = device(5);
    let mut first = SyncSession::new(&store, 64 << 10).unwrap();
    let handshake = decode(&first.next_request().unwrap().unwrap());
    first
        .receive(accepting(&handshake, &store, false), 4.0, clock(&store))
        .unwrap();
    let cut = decode(&first.next_request().unwrap().unwrap());
    assert_eq!(cut.ops.len(), 5);
    drop(first); // the connection dropped: no response
    assert_eq!(
        store.pending_count().unwrap(),
        5,
        "nothing is acknowledged without a response"
    );
    let mut second = SyncSession::new(&store, 64 << 10).unwrap();
    let again = decode(&second.next_request().unwrap().unwrap());
    let ids = |r: &SyncRequest<Op>| r.ops.iter().map(|op| op.id).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&cut));
    second
        .receive(accepting(&again, &store, false), 4.0, clock(&store))
        .unwrap();
    assert!(second.is_done());
    assert_eq!(store.pending_count().unwrap(), 0);
}

#[test]
fn the_session_goes_on_while_the_server_has_more_and_reports_progress() {
    let store = device(0);
    let mut session = SyncSession::new(&store, 64 << 10).unwrap();
    let first = decode(&session.next_request().unwrap().unwrap());
    let progress = session
        .receive(accepting(&first, &store, true), 4.0, clock(&store))
        .unwrap();
    assert!(!session.is_done(), "the server said more");
    assert!(progress.fraction < 1.0, "{progress:?}");
    let second = decode(&session.next_request().unwrap().unwrap());
    assert_eq!(second.cursor, 1, "the cursor the server gave");
    let progress = session
        .receive(accepting(&second, &store, false), 4.0, clock(&store))
        .unwrap();
    assert!(session.is_done());
    assert_eq!(progress.fraction, 1.0);
    assert_eq!(
        progress.exchanges, 0,
        "requests are counted by the caller, who makes them"
    );
}

#[test]
fn a_response_that_leaves_an_op_unanswered_or_answers_nothing_is_a_protocol_error() {
    let store = device(2);
    let mut session = SyncSession::new(&store, 64 << 10).unwrap();
    let response = SyncResponse {
        server_time_ms: store.wall_clock_ms(),
        accepted: Vec::new(),
        rejected: Vec::new(),
        ops: Vec::new(),
        cursor: 0,
        more: false,
        forms: Vec::new(),
    };
    assert!(matches!(
        session.receive(response, 4.0, clock(&store)),
        Err(SyncError::Protocol(ProtocolError::NoRequest))
    ));
    let handshake = decode(&session.next_request().unwrap().unwrap());
    session
        .receive(accepting(&handshake, &store, false), 4.0, clock(&store))
        .unwrap();
    let request = decode(&session.next_request().unwrap().unwrap());
    let mut response = accepting(&request, &store, false);
    response.accepted.pop();
    assert!(matches!(
        session.receive(response, 4.0, clock(&store)),
        Err(SyncError::Protocol(ProtocolError::Unanswered { .. }))
    ));
    // Nothing was applied: both ops still wait for the server.
    assert_eq!(store.pending_count().unwrap(), 2);
}
