use std::sync::Arc;

use mpaka_core::Collection;

use super::*;

fn store() -> (tempfile::TempDir, std::sync::Arc<MpakaStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = MpakaStore::open(dir.path().join("phone.mpaka").to_str().unwrap().into(), None).unwrap();
    (dir, store)
}

fn trader() -> Trader {
    Trader {
        id: String::new(),
        full_name: "Uwimana Claudine".into(),
        sex: "female".into(),
        year_of_birth: Some(1988),
        age_band: None,
        nationality: Some("CD".into()),
        phone: Some("+243970111222".into()),
        main_goods: vec!["beans".into(), "fish".into()],
        border_post: "rusizi_2".into(),
        consent_given: true,
        consent_at: None,
        merged_into: None,
    }
}

#[test]
fn version_names_the_schema() {
    let v = library_version();
    assert!(
        v.starts_with("mpaka 0.") && v.contains(&format!("schema v{}", mpaka_core::SCHEMA_VERSION)),
        "{v}"
    );
}

#[test]
fn traders_round_trip_and_are_found_by_name_or_phone() {
    let (_dir, store) = store();
    let id = store.save_trader(trader()).unwrap();
    let back = store.get_trader(id.clone()).unwrap().unwrap();
    assert_eq!(
        back,
        Trader {
            id: id.clone(),
            ..trader()
        }
    );
    assert_eq!(store.refresh_trader_search().unwrap(), 1, "the new trader is indexed");
    assert_eq!(store.refresh_trader_search().unwrap(), 0, "and only once");
    assert_eq!(store.search_traders("claudine".into(), 10).unwrap().len(), 1);
    assert_eq!(store.search_traders("+243970111222".into(), 10).unwrap()[0].id, id);
    assert!(store.search_traders("nobody".into(), 10).unwrap().is_empty());
}

#[test]
fn what_would_have_panicked_is_a_typed_error() {
    let (dir, store) = store();
    // Bad ids, bad values, bad keys, bad JSON, bad instances: errors, not panics.
    assert!(matches!(
        store.get_trader("not-a-uuid".into()),
        Err(MpakaError::InvalidInput { .. })
    ));
    let bad = Trader {
        sex: "unknown".into(),
        ..trader()
    };
    let err = store.save_trader(bad).unwrap_err();
    assert!(matches!(err, MpakaError::InvalidInput { .. }));
    assert!(err.to_string().contains("sex"), "{err}");
    assert!(matches!(
        store.resolve_conflict(7, "{".into()),
        Err(MpakaError::InvalidInput { .. })
    ));
    assert!(matches!(
        store.resolve_conflict(7, "1".into()),
        Err(MpakaError::NotFound { .. })
    ));
    let key = MpakaStore::open(dir.path().join("k.mpaka").to_str().unwrap().into(), Some(vec![1, 2, 3]));
    assert!(matches!(key, Err(MpakaError::WrongKey { .. })));
    let missing = MpakaFormSession::start(
        store.clone(),
        "trader_survey".into(),
        "1".into(),
        SessionContext {
            username: "amina".into(),
            device_id: "tecno".into(),
            language: "English (en)".into(),
        },
    );
    assert!(matches!(missing, Err(MpakaError::NotFound { .. })));
    let client = MpakaSyncClient::with_http("ftp://nowhere".into(), None, Arc::new(NoNetwork)).unwrap();
    let url = client.sync(store.clone(), "t".into(), None, None);
    assert!(matches!(url, Err(MpakaError::InvalidInput { .. })));
    let attendance = store.register_attendance(
        "x".into(),
        Attendee::WalkIn {
            name_or_code: "A".into(),
        },
        "female".into(),
        "f".into(),
    );
    assert!(matches!(attendance, Err(MpakaError::InvalidInput { .. })));
}

/// Issue 15: a record saved through the bindings writes what changed, so
/// two phones correcting different fields of one trader both keep theirs.
#[test]
fn a_saved_record_writes_only_what_changed() {
    let (_dir, store) = store();
    let id = store.save_trader(trader()).unwrap();
    let mut back = store.get_trader(id.clone()).unwrap().unwrap();
    back.phone = Some("+243970333444".into());
    store.save_trader(back.clone()).unwrap();
    let ops = store.store.pending_ops(10).unwrap();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[1].fields.keys().collect::<Vec<_>>(), ["phone"]);
    // Unchanged: nothing written.
    store.save_trader(back).unwrap();
    assert_eq!(store.pending_count().unwrap(), 2);
}

/// The field names a record's `Deserialize` expects, asked of serde itself
/// (the names it passes to `deserialize_struct`), so the check below
/// reads the records as they are, not a list kept beside them.
fn record_fields<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    use serde::de::{Deserializer, Error as _, Visitor};

    #[derive(Debug)]
    struct Caught(Vec<&'static str>);
    impl std::fmt::Display for Caught {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "fields caught")
        }
    }
    impl std::error::Error for Caught {}
    impl serde::de::Error for Caught {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Caught(Vec::new())
        }
    }
    struct Introspect;
    impl<'de> Deserializer<'de> for Introspect {
        type Error = Caught;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Caught> {
            Err(Caught::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Caught> {
            Err(Caught(fields.to_vec()))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    match T::deserialize(Introspect) {
        Err(Caught(fields)) => fields,
        Ok(_) => Vec::new(),
    }
}

#[test]
fn each_record_has_exactly_its_collections_fields() {
    let check = |record: Vec<&'static str>, collection: Collection| {
        let mut record: Vec<&str> = record.into_iter().filter(|f| *f != "id").collect();
        let mut schema: Vec<&str> = collection.schema().fields.iter().map(|f| f.name).collect();
        record.sort_unstable();
        schema.sort_unstable();
        assert_eq!(record, schema, "the {} record and its schema", collection.name());
    };
    check(record_fields::<Trader>(), Collection::Traders);
    check(record_fields::<AwarenessSession>(), Collection::AwarenessSessions);
    check(record_fields::<Attendance>(), Collection::Attendance);
}

#[test]
fn a_merged_duplicate_is_listed_as_the_trader_it_was_merged_into() {
    let (_dir, store) = store();
    let survivor = store.save_trader(trader()).unwrap();
    let duplicate = store.save_trader(trader()).unwrap();
    // What an M&E officer's merge writes (it reaches the phone by sync).
    let mark: mpaka_core::Fields =
        serde_json::from_value(serde_json::json!({"merged_into": survivor.clone()})).unwrap();
    store
        .store
        .save(Collection::Traders, duplicate.parse().unwrap(), mark)
        .unwrap();
    let found = store.search_traders("Claudine".into(), 10).unwrap();
    assert_eq!(
        found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [survivor.as_str()]
    );
    let gone = store.get_trader(duplicate).unwrap().unwrap();
    assert_eq!(gone.merged_into.as_deref(), Some(survivor.as_str()));
    // Saving the duplicate back from the phone leaves the mark alone.
    store
        .save_trader(Trader {
            phone: Some("+243970999888".into()),
            ..gone.clone()
        })
        .unwrap();
    let after = store.get_trader(gone.id.clone()).unwrap().unwrap();
    assert_eq!(after.merged_into.as_deref(), Some(survivor.as_str()));
}

/// An app's HTTP stack with no network.
struct NoNetwork;

impl HttpClient for NoNetwork {
    fn post(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Connect {
            reason: "airplane mode".into(),
        })
    }
}

#[test]
fn an_apps_http_failures_are_retried_then_told_as_network() {
    let (_dir, store) = store();
    store.save_trader(trader()).unwrap();
    let options = SyncOptions {
        max_retries: Some(1),
        ..SyncOptions::default()
    };
    let client =
        MpakaSyncClient::with_http("https://mpaka.example.org".into(), Some(options), Arc::new(NoNetwork)).unwrap();
    let err = client.sync(store.clone(), "t".into(), None, None).unwrap_err();
    assert!(matches!(err, MpakaError::Network { .. }), "{err}");
    assert!(err.to_string().contains("airplane mode"), "{err}");
    assert_eq!(store.pending_count().unwrap(), 1, "nothing is lost");
}
