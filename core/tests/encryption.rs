//! Encryption at rest: a lost phone must not expose who was interviewed.
#![cfg(feature = "encryption")]
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::path::Path;

use mpaka_core::{Collection, EntityId, Error, Fields, Store, StoreKey, StoreOptions};
use serde_json::json;

const NAME: &str = "Nyirahabimana Consolée";

fn keyed(key: StoreKey) -> StoreOptions {
    StoreOptions {
        key: Some(key),
        ..StoreOptions::default()
    }
}

fn write_trader(path: &Path, options: StoreOptions) -> EntityId {
    let store = Store::open(path, options).unwrap();
    let id = EntityId::random();
    let fields: Fields = serde_json::from_value(json!({
        "full_name": NAME, "sex": "female", "border_post": "rusizi_2", "consent_given": true,
        "phone": "+243 970 123 456",
    }))
    .unwrap();
    store.save(Collection::Traders, id, fields).unwrap();
    id
}

/// Every byte mpaka left on disk for this store (the file and its WAL).
fn bytes_on_disk(path: &Path) -> Vec<u8> {
    let mut all = std::fs::read(path).unwrap();
    for suffix in ["-wal", "-journal"] {
        if let Ok(more) = std::fs::read(format!("{}{suffix}", path.display())) {
            all.extend(more);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn an_unkeyed_store_holds_the_name_in_plain_text() {
    // The control: proves the search below would find the name.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.mpaka");
    write_trader(&path, StoreOptions::default());
    assert!(contains(&bytes_on_disk(&path), NAME));
}

#[test]
fn a_keyed_store_holds_no_plain_text_and_reopens_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.mpaka");
    let key = StoreKey::Raw(*b"0123456789abcdef0123456789abcdef");
    let id = write_trader(&path, keyed(key.clone()));
    let disk = bytes_on_disk(&path);
    assert!(disk.len() > 4096);
    assert!(!contains(&disk, NAME));
    assert!(!contains(&disk, "970 123 456"));
    assert!(!contains(&disk, "SQLite format 3"), "even the header is encrypted");

    let store = Store::open(&path, keyed(key)).unwrap();
    let trader = store.get(Collection::Traders, id).unwrap().unwrap();
    assert_eq!(trader.get("full_name"), Some(&json!(NAME)));
}

#[test]
fn a_wrong_or_missing_key_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.mpaka");
    write_trader(
        &path,
        keyed(StoreKey::Passphrase("correct horse battery staple".into())),
    );
    let before = std::fs::read(&path).unwrap();

    let err = Store::open(&path, keyed(StoreKey::Passphrase("wrong".into()))).unwrap_err();
    assert!(matches!(err, Error::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains("key is wrong"), "{err}");

    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("encrypted"), "{err}");

    let err = Store::open(&path, keyed(StoreKey::Passphrase(String::new()))).unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    Store::open(
        &path,
        keyed(StoreKey::Passphrase("correct horse battery staple".into())),
    )
    .unwrap();
}
