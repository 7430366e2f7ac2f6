//! `mpaka inspect`: what a store file holds, without its answers.

use std::fmt::Write;
use std::path::Path;

use mpaka_core::{Collection, Query, Result, Store, StoreOptions};

/// A report of counts only: names and answers never leave the store here.
pub fn run(path: &Path) -> Result<String> {
    if !path.exists() {
        return Err(mpaka_core::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no store at {}", path.display()),
        )));
    }
    let store = Store::open(path, StoreOptions::default())?;
    let mut out = String::new();
    let _ = writeln!(out, "store {} (node {})", path.display(), store.node());
    for collection in Collection::ALL {
        let live = store.count(&Query::new(collection))?;
        let all = store.count(&Query::new(collection).include_deleted())?;
        let _ = writeln!(
            out,
            "  {:<20} {live:>8} live, {:>6} deleted",
            collection.name(),
            all - live
        );
    }
    let _ = writeln!(
        out,
        "  ops not yet acknowledged by a server: {}",
        store.pending_count()?
    );
    let _ = writeln!(out, "  open conflicts: {}", store.conflicts(true)?.len());
    Ok(out)
}
