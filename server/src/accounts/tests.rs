use mpaka_core::NodeId;

use super::*;

/// Every backend: a SQLite file (with its folder) and a fresh PostgreSQL
/// schema. Each test runs its body on both.
fn backends() -> Vec<(&'static str, Option<tempfile::TempDir>, Accounts)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Accounts::open(&dir.path().join("server.sqlite")).unwrap();
    let postgres = Accounts::on_postgres(crate::storage::postgres::test_database().pool());
    vec![("sqlite", Some(dir), sqlite), ("postgres", None, postgres)]
}

#[test]
fn an_enrollment_code_gives_one_device_token_once_and_only_its_hash_is_stored() {
    for (name, dir, accounts) in backends() {
        println!("backend: {name}");
        let project = accounts.create_project("rusizi", "Rusizi II", 0).unwrap();
        accounts.add_user(Some(&project), "amina", Role::Enumerator, 0).unwrap();
        let (code, _) = accounts
            .issue_enrollment(&project, "amina", (1, Role::Admin), 1_000)
            .unwrap();
        let node = NodeId::random();
        // Typed in lower case with spaces: still the code.
        let typed = code.expose().to_lowercase().replace('-', " ");
        let (principal, token) = accounts.enroll(&typed, node, "Tecno Spark", 2_000).unwrap();
        assert_eq!(principal.username, "amina");
        assert_eq!(principal.role, Role::Enumerator);
        assert_eq!(principal.node, Some(node));
        assert!(token.expose().len() >= 4 + 43, "256 bits in base64url");
        assert!(!format!("{token:?}").contains(token.expose()));
        assert!(matches!(
            accounts.enroll(code.expose(), NodeId::random(), "again", 3_000),
            Err(AccountError::BadCode)
        ));
        let found = accounts.authenticate(token.expose()).unwrap().unwrap();
        assert_eq!(found.device_id, principal.device_id);

        let stored = accounts
            .db
            .with(|db| db.query("SELECT token_hash FROM devices", crate::sql::params![]))
            .unwrap();
        assert_eq!(stored.len(), 1, "{name}");
        assert!(!format!("{stored:?}").contains(token.expose()), "{name}");
        // Neither the token nor the code is anywhere in the database file.
        drop(accounts);
        if let Some(dir) = dir {
            let mut bytes = std::fs::read(dir.path().join("server.sqlite")).unwrap();
            bytes.extend(std::fs::read(dir.path().join("server.sqlite-wal")).unwrap_or_default());
            let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!contains(token.expose()));
            assert!(!contains(&normalize_code(code.expose())));
        }
    }
}

#[test]
fn expired_codes_revoked_devices_and_copied_node_ids_are_refused() {
    for (name, _dir, accounts) in backends() {
        println!("backend: {name}");
        let project = accounts.create_project("rusizi", "Rusizi II", 0).unwrap();
        accounts.add_user(Some(&project), "amina", Role::Enumerator, 0).unwrap();
        let (old, expires) = accounts
            .issue_enrollment(&project, "amina", (1, Role::Admin), 0)
            .unwrap();
        assert!(matches!(
            accounts.enroll(old.expose(), NodeId::random(), "late", expires),
            Err(AccountError::BadCode)
        ));

        let node = NodeId::random();
        let (code, _) = accounts
            .issue_enrollment(&project, "amina", (1, Role::Admin), 0)
            .unwrap();
        let (principal, token) = accounts.enroll(code.expose(), node, "phone", 10).unwrap();
        let (again, _) = accounts
            .issue_enrollment(&project, "amina", (1, Role::Admin), 0)
            .unwrap();
        assert!(matches!(
            accounts.enroll(again.expose(), node, "copy", 20),
            Err(AccountError::Exists(_))
        ));

        // The clock offset a sync reports is kept; a sync without one keeps it.
        accounts
            .record_sync(principal.device_id, 10, 1, Some(-63_072_000_000), Some(40), 25)
            .unwrap();
        accounts.record_sync(principal.device_id, 5, 0, None, None, 26).unwrap();
        let device = accounts
            .devices(&project)
            .unwrap()
            .into_iter()
            .find(|d| d.id == principal.device_id)
            .unwrap();
        assert_eq!(device.clock_offset_ms, Some(-63_072_000_000), "{name}");
        assert_eq!(device.pending_ops, Some(40), "{name}: kept when a sync does not say");
        assert_eq!(device.clock_error(), "2 y ahead", "{name}");
        assert_eq!(
            (device.ops_received, device.ops_rejected, device.last_sync_at),
            (15, 1, Some(26)),
            "{name}"
        );

        accounts.revoke_device(&project, principal.device_id, 30).unwrap();
        assert!(accounts.authenticate(token.expose()).unwrap().is_none());
        let other = accounts.create_project("goma", "Goma", 0).unwrap();
        assert!(matches!(
            accounts.revoke_device(&other, principal.device_id, 30),
            Err(AccountError::UnknownDevice(_))
        ));
    }
}

#[test]
fn names_are_checked_and_admins_are_server_wide() {
    for (name, _dir, accounts) in backends() {
        println!("backend: {name}");
        assert!(matches!(
            accounts.create_project("Bad Name", "x", 0),
            Err(AccountError::Invalid(_))
        ));
        let project = accounts.create_project("rusizi", "Rusizi II", 0).unwrap();
        assert!(matches!(
            accounts.add_user(None, "amina", Role::Enumerator, 0),
            Err(AccountError::Invalid(_))
        ));
        accounts.add_user(None, "admin", Role::Admin, 0).unwrap();
        assert_eq!(accounts.user(Some(&project), "admin").unwrap().1, Role::Admin);
        assert!(matches!(
            accounts.issue_enrollment(&project, "admin", (1, Role::Admin), 0),
            Err(AccountError::Invalid(_))
        ));
        let token = accounts.issue_api_token(None, "admin", 0).unwrap();
        let admin = accounts.authenticate(token.expose()).unwrap().unwrap();
        assert!(admin.in_project(&project) && admin.node.is_none());
    }
}

#[test]
fn project_users_cannot_take_a_server_wide_name() {
    for (name, _dir, accounts) in backends() {
        println!("backend: {name}");
        let project = accounts.create_project("rusizi", "Rusizi II", 0).unwrap();
        // `admin` is reserved even before first start creates it.
        for role in [Role::Enumerator, Role::MeOfficer] {
            let refused = accounts.add_user(Some(&project), "admin", role, 0);
            assert!(
                matches!(&refused, Err(AccountError::Reserved(n)) if n == "admin"),
                "{name}: {refused:?}"
            );
        }
        accounts.add_user(None, "admin", Role::Admin, 0).unwrap();
        accounts.add_user(None, "kagame.it", Role::Admin, 0).unwrap();
        assert!(matches!(
            accounts.add_user(Some(&project), "kagame.it", Role::Enumerator, 0),
            Err(AccountError::Reserved(_))
        ));
        // Other names are free, and the admin lookup still finds the admin.
        accounts
            .add_user(Some(&project), "administrator-grace", Role::Enumerator, 0)
            .unwrap();
        assert_eq!(accounts.user(Some(&project), "admin").unwrap().1, Role::Admin);
    }
}

#[test]
fn an_accounts_file_from_before_clock_offsets_and_logins_gets_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.sqlite");
    drop(Accounts::open(&path).unwrap());
    // As the first release wrote it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "ALTER TABLE devices DROP COLUMN clock_offset_ms; ALTER TABLE devices DROP COLUMN pending_ops; \
         ALTER TABLE users DROP COLUMN password_hash; DROP TABLE web_sessions;",
    )
    .unwrap();
    drop(conn);
    let accounts = Accounts::open(&path).unwrap();
    let project = accounts.create_project("rusizi", "Rusizi II", 0).unwrap();
    accounts.add_user(Some(&project), "amina", Role::Enumerator, 0).unwrap();
    let (code, _) = accounts
        .issue_enrollment(&project, "amina", (1, Role::Admin), 0)
        .unwrap();
    let (principal, _) = accounts.enroll(code.expose(), NodeId::random(), "phone", 1).unwrap();
    accounts
        .record_sync(principal.device_id, 1, 0, Some(3_600_000), Some(7), 2)
        .unwrap();
    let device = &accounts.devices(&project).unwrap()[0];
    assert_eq!((device.clock_offset_ms, device.pending_ops), (Some(3_600_000), Some(7)));
    assert_eq!(device.clock_error(), "1 h behind");
    let right = DeviceInfo {
        clock_offset_ms: Some(30_000),
        ..device.clone()
    };
    assert_eq!(right.clock_error(), "ok", "under a minute");
    let never = DeviceInfo {
        clock_offset_ms: None,
        ..device.clone()
    };
    assert_eq!(never.clock_error(), "-");
    accounts.add_user(Some(&project), "grace", Role::MeOfficer, 0).unwrap();
    accounts
        .set_password(Some(&project), "grace", "a long pass phrase")
        .unwrap();
    assert!(accounts.login("grace", "a long pass phrase", 3).unwrap().is_some());
}

#[test]
fn dashboard_logins_need_the_password_expire_and_end_at_logout() {
    for (name, _dir, accounts) in backends() {
        println!("backend: {name}");
        let project = accounts.create_project("rusizi", "Rusizi II", 0).unwrap();
        accounts.add_user(Some(&project), "grace", Role::MeOfficer, 0).unwrap();
        accounts.add_user(Some(&project), "amina", Role::Enumerator, 0).unwrap();
        assert!(matches!(
            accounts.set_password(Some(&project), "grace", "short"),
            Err(AccountError::Invalid(_))
        ));
        accounts
            .set_password(Some(&project), "grace", "a long pass phrase")
            .unwrap();
        accounts
            .set_password(Some(&project), "amina", "a long pass phrase")
            .unwrap();
        let stored = accounts
            .db
            .with(|db| {
                db.query(
                    "SELECT password_hash FROM users WHERE username = 'grace'",
                    crate::sql::params![],
                )
            })
            .unwrap();
        let hash = stored[0].text(0).unwrap();
        assert!(hash.starts_with("$argon2id$") && !hash.contains("pass phrase"));

        assert!(accounts.login("grace", "a long pass phrasE", 1_000).unwrap().is_none());
        assert!(accounts.login("nobody", "a long pass phrase", 1_000).unwrap().is_none());
        assert!(
            accounts.login("amina", "a long pass phrase", 1_000).unwrap().is_none(),
            "enumerators have no dashboard"
        );
        let cookie = accounts.login("grace", "a long pass phrase", 1_000).unwrap().unwrap();
        let who = accounts.web_session(cookie.expose(), 2_000).unwrap().unwrap();
        assert_eq!((who.username.as_str(), who.role), ("grace", Role::MeOfficer));
        assert_eq!(who.project.as_ref().map(|p| p.id), Some(project.id));
        assert!(who.device_id < 0);
        assert!(
            accounts.authenticate(cookie.expose()).unwrap().is_none(),
            "a cookie is not an API token"
        );
        assert!(
            accounts
                .web_session(cookie.expose(), 1_000 + WEB_SESSION_TTL_MS)
                .unwrap()
                .is_none(),
            "expired"
        );
        accounts.logout(cookie.expose()).unwrap();
        assert!(accounts.web_session(cookie.expose(), 2_000).unwrap().is_none());
        let again = accounts.login("grace", "a long pass phrase", 3_000).unwrap().unwrap();
        accounts
            .set_password(Some(&project), "grace", "another long phrase")
            .unwrap();
        assert!(
            accounts.web_session(again.expose(), 3_001).unwrap().is_none(),
            "a new password ends the sessions of the old one"
        );
        assert!(accounts.login("grace", "another long phrase", 3_002).unwrap().is_some());
        assert!(
            matches!(
                accounts.issue_enrollment(&project, "grace", (7, Role::MeOfficer), 3_003),
                Err(AccountError::Invalid(_))
            ),
            "an officer cannot hand out a code that acts as another officer"
        );
        accounts
            .issue_enrollment(&project, "amina", (7, Role::MeOfficer), 3_003)
            .unwrap();
        accounts
            .issue_enrollment(&project, "grace", (1, Role::Admin), 3_003)
            .unwrap();

        accounts
            .set_distinct_traders(&project, "a,b", who.user_id, 4_000)
            .unwrap();
        accounts
            .set_distinct_traders(&project, "a,b", who.user_id, 4_001)
            .unwrap();
        let distinct = accounts.distinct_traders(&project).unwrap();
        assert_eq!(
            distinct.into_iter().collect::<Vec<_>>(),
            vec!["a,b".to_owned()],
            "{name}"
        );
    }
}
