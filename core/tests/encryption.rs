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

/// The crypto library this build's SQLCipher runs on, as SQLCipher names it.
const PROVIDER: &str = if cfg!(feature = "encryption-tomcrypt") {
    "libtomcrypt"
} else if cfg!(target_vendor = "apple") {
    "commoncrypto"
} else {
    "openssl"
};

/// The passphrase of the `encrypted-<provider>.mpaka` fixtures.
const FIXTURE_PASSPHRASE: &str = "Rusizi II / Bukavu";

fn provider_fixture(provider: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/encrypted-{provider}.mpaka"))
}

#[test]
fn the_build_encrypts_with_the_provider_its_features_chose() {
    // A build with `encryption-tomcrypt` whose SQLCipher quietly fell back
    // to OpenSSL would still pass every other test here.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.mpaka");
    write_trader(&path, keyed(StoreKey::Passphrase(FIXTURE_PASSPHRASE.into())));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "key", FIXTURE_PASSPHRASE).unwrap();
    let provider: String = conn.query_row("PRAGMA cipher_provider", [], |r| r.get(0)).unwrap();
    assert_eq!(provider, PROVIDER);
}

/// A phone built on libtomcrypt and an M&E laptop or server tool built on
/// OpenSSL must read each other's files: `fixtures/encrypted-<provider>.mpaka`
/// were written by each build (`MPAKA_WRITE_FIXTURE=1` rewrites this build's
/// own), and every build opens all of them.
#[test]
fn stores_written_with_either_crypto_provider_open_with_this_one() {
    if std::env::var_os("MPAKA_WRITE_FIXTURE").is_some() {
        let path = provider_fixture(PROVIDER);
        let _ = std::fs::remove_file(&path);
        let id = write_trader(&path, keyed(StoreKey::Passphrase(FIXTURE_PASSPHRASE.into())));
        std::fs::write(path.with_extension("id"), id.to_string()).unwrap();
    }
    for provider in ["openssl", "libtomcrypt"] {
        let original = provider_fixture(provider);
        let id: EntityId = std::fs::read_to_string(original.with_extension("id"))
            .unwrap_or_else(|e| panic!("missing fixture {}: {e}", original.display()))
            .trim()
            .parse()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.mpaka");
        std::fs::copy(&original, &path).unwrap();
        assert!(
            !contains(&std::fs::read(&path).unwrap(), NAME),
            "{provider} fixture is not encrypted"
        );

        let store = Store::open(&path, keyed(StoreKey::Passphrase(FIXTURE_PASSPHRASE.into())))
            .unwrap_or_else(|e| panic!("the {provider} fixture does not open with {PROVIDER}: {e}"));
        let trader = store.get(Collection::Traders, id).unwrap().unwrap();
        assert_eq!(trader.get("full_name"), Some(&json!(NAME)), "{provider} fixture");
        // And this build can keep writing to it.
        write_again(&store, id);

        let err = Store::open(&path, keyed(StoreKey::Passphrase("wrong".into()))).unwrap_err();
        assert!(matches!(err, Error::WrongKey { .. }), "{provider}: {err}");
    }
}

fn write_again(store: &Store, id: EntityId) {
    let fields: Fields = serde_json::from_value(json!({"phone": "+250 788 000 111"})).unwrap();
    store.save(Collection::Traders, id, fields).unwrap();
    let trader = store.get(Collection::Traders, id).unwrap().unwrap();
    assert_eq!(trader.get("phone"), Some(&json!("+250 788 000 111")));
}
