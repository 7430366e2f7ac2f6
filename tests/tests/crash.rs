//! Kill -9 in the middle of a stream of saves, again and again, then
//! reopen: every save that returned is there in full, and no op is in the
//! log without its state or the other way round.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use mpaka_core::{Collection, EntityId, Query, Store, StoreOptions};
use mpaka_tests::baseline_submission;

#[test]
fn a_killed_writer_leaves_every_returned_save_and_no_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.mpaka");
    // (n, id): save number n of its writer process returned with this id.
    let mut returned: Vec<(u64, EntityId)> = Vec::new();
    // A line cut short by the kill does not parse: that save is "in flight".
    let parse = |line: &str| -> Option<(u64, EntityId)> {
        let (n, id) = line.split_once(' ')?;
        Some((n.parse().ok()?, id.parse().ok()?))
    };
    for round in 0..6u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("crash-writer starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it run a while, then kill it mid-stream at an uneven moment.
        for _ in 0..(20 + round * 37) {
            let line = lines.next().expect("writer is alive").unwrap();
            returned.push(parse(&line).expect("a whole line while the writer runs"));
        }
        std::thread::sleep(Duration::from_micros(300 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        // Saves that returned between our last read and the kill.
        returned.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));

        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(integrity, "ok");
        let ops: i64 = conn.query_row("SELECT count(*) FROM ops", [], |r| r.get(0)).unwrap();
        let entities = store.count(&Query::new(Collection::Submissions)).unwrap();
        assert_eq!(
            ops as u64, entities,
            "each save is one op and one new entity, together or not at all"
        );
        assert!(entities >= returned.len() as u64);
        let unreported = entities - returned.len() as u64;
        assert!(
            unreported <= round + 1,
            "at most the save in flight at each kill may land unreported"
        );
        for (n, id) in &returned {
            let saved = store
                .get(Collection::Submissions, *id)
                .unwrap()
                .expect("a returned save survives");
            assert_eq!(saved.state.fields, baseline_submission(*n), "save {n} is whole");
        }
        assert_eq!(store.pending_count().unwrap(), entities);
    }
    assert!(returned.len() > 300);
}
