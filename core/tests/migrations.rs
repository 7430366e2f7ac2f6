//! Stores written by every earlier released schema open and upgrade.
//!
//! `fixtures/store-v<N>.mpaka` is a store as release schema N wrote it,
//! with the content `fixture_content` describes. Each schema release adds
//! its fixture (write it with `MPAKA_WRITE_FIXTURE=1 cargo test -p
//! mpaka-core --test migrations`) and never changes older ones.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use mpaka_core::{Collection, EntityId, Fields, Query, SCHEMA_VERSION, Store, StoreOptions};
use serde_json::json;

const TRADER: EntityId = EntityId(uuid::Uuid::from_u128(0x0001_0000_0000_4000_8000_0000_0000_0001));
const SUBMISSION: EntityId = EntityId(uuid::Uuid::from_u128(0x0002_0000_0000_4000_8000_0000_0000_0002));

fn fixture(version: i64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/store-v{version}.mpaka"))
}

fn fields(value: serde_json::Value) -> Fields {
    serde_json::from_value(value).unwrap()
}

fn write_fixture_content(store: &Store) {
    store
        .save(
            Collection::Traders,
            TRADER,
            fields(json!({"full_name": "Fixture Trader", "sex": "female", "border_post": "rusizi_1", "consent_given": true})),
        )
        .unwrap();
    store
        .save(
            Collection::Submissions,
            SUBMISSION,
            fields(
                json!({"form_id": "baseline", "form_version": "1", "enumerator": "enum01", "status": "complete",
                "trader_id": TRADER.to_string(), "answers/fee_amount": 500}),
            ),
        )
        .unwrap();
    store
        .save(Collection::Traders, TRADER, fields(json!({"phone": "0788000000"})))
        .unwrap();
}

#[test]
fn stores_of_every_released_schema_open_upgrade_and_keep_their_data() {
    if std::env::var_os("MPAKA_WRITE_FIXTURE").is_some() {
        let path = fixture(SCHEMA_VERSION);
        let _ = std::fs::remove_file(&path);
        write_fixture_content(&Store::open(&path, StoreOptions::default()).unwrap());
    }
    for version in 1..=SCHEMA_VERSION {
        let original = fixture(version);
        assert!(
            original.exists(),
            "missing fixture {}: every schema release adds one",
            original.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("old.mpaka");
        std::fs::copy(&original, &copy).unwrap();

        let store = Store::open(&copy, StoreOptions::default()).unwrap();
        let trader = store
            .get(Collection::Traders, TRADER)
            .unwrap()
            .expect("trader survives");
        assert_eq!(trader.get("full_name"), Some(&json!("Fixture Trader")));
        assert_eq!(trader.get("phone"), Some(&json!("0788000000")));
        // Schema 6's search index holds what earlier schemas stored.
        let found = store.search_traders("fixture", 5).unwrap();
        assert_eq!(found.iter().map(|t| t.id).collect::<Vec<_>>(), [TRADER], "v{version}");
        let found = store.search_traders("8000000", 5).unwrap();
        assert_eq!(found.iter().map(|t| t.id).collect::<Vec<_>>(), [TRADER], "v{version}");
        let query = Query::new(Collection::Submissions)
            .eq("form_id", "baseline")
            .eq("status", "complete");
        assert_eq!(store.count(&query).unwrap(), 1);
        assert_eq!(store.pending_count().unwrap(), 3);
        let last = store.last_hlc();
        let op = store
            .save(Collection::Traders, TRADER, fields(json!({"nationality": "CD"})))
            .unwrap();
        assert!(op.hlc > last, "the clock resumes past the old store's stamps");
        drop(store);
        let reopened: i64 = rusqlite::Connection::open(&copy)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(reopened, SCHEMA_VERSION);
    }
}

#[test]
fn an_empty_store_at_each_older_schema_upgrades() {
    for version in 0..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.mpaka");
        Store::create_at_schema_version(&path, version).unwrap();
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        write_fixture_content(&store);
        assert_eq!(store.count(&Query::new(Collection::Traders)).unwrap(), 1);
    }
}
