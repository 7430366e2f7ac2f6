//! A device process for the crash tests: syncs one store with a server,
//! printing a line after every exchange, until done (or killed).
//!
//! Usage: sync-device STORE URL TOKEN BATCH_BYTES
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)] // test support

use std::io::Write;

use mpaka_core::sync::{CancelToken, Progress, SyncClient, SyncConfig, SyncProgress};
use mpaka_core::{Store, StoreOptions};

struct Print;

impl SyncProgress for Print {
    fn on_progress(&self, p: Progress) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "exchange {} pulled {} fraction {:.3}",
            p.exchanges, p.pulled, p.fraction
        );
        let _ = out.flush();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, url, token, batch] = &args[..] else {
        panic!("usage: sync-device STORE URL TOKEN BATCH_BYTES");
    };
    let store = Store::open(store, StoreOptions::default()).unwrap();
    let config = SyncConfig {
        batch_bytes: batch.parse().unwrap(),
        ..SyncConfig::default()
    };
    let report = SyncClient::new(config)
        .unwrap()
        .sync(&store, url, token, &Print, &CancelToken::new())
        .unwrap();
    println!("done pulled {}", report.pulled);
}
