//! Saves baseline submissions to a store as fast as it can, printing `n id`
//! after save number n returned, until it is killed. The crash test kills it
//! at random moments and checks what the file holds.

use std::io::Write;

use mpaka_core::{Collection, EntityId, Store, StoreOptions};
use mpaka_tests::baseline_submission;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: crash-writer STORE")?;
    let store = Store::open(&path, StoreOptions::default())?;
    let mut out = std::io::stdout().lock();
    for n in 0.. {
        let id = EntityId::random();
        store.save(Collection::Submissions, id, baseline_submission(n))?;
        writeln!(out, "{n} {id}")?;
        out.flush()?;
    }
    Ok(())
}
