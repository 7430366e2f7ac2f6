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
    let client = MpakaSyncClient::new("ftp://nowhere".into(), None).unwrap();
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
