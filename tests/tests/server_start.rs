//! What `mpaka serve`, `admin` and `export` refuse or get right before
//! serving: a taken port, PostgreSQL URLs (passwords kept off the command
//! line, wrong addresses told at once), the store key, private files.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mpaka_tests::server::{PROJECT, TestServer, fresh_database_url, mpaka_bin};

const PASSWORD: &str = "S3cr3tPW";

/// `mpaka <args>` with extra environment variables and umask 022 (under
/// which files used to be created 0644), and how long it took.
fn mpaka(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let mut command = Command::new(mpaka_bin());
    command.args(args).env("RUST_LOG", "info");
    for var in [
        "MPAKA_DATABASE_URL",
        "MPAKA_DATABASE_URL_FILE",
        "MPAKA_STORE_KEY",
        "MPAKA_STORE_KEY_FILE",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    #[allow(unsafe_code)]
    // SAFETY: umask(2) is async-signal-safe and cannot fail.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let start = Instant::now();
    let output = command.output().unwrap();
    (output, start.elapsed())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    metadata.permissions().mode() & 0o777
}

#[test]
fn a_taken_port_creates_nothing_and_the_next_start_shows_the_admin_token() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("mpaka-data");
    let (output, _) = mpaka(
        &["serve", "--addr", &addr, "--data-dir", data_dir.to_str().unwrap()],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("cannot serve on {addr}")),
        "{}",
        stderr(&output)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("mpk_"));
    drop(taken);
    let server = TestServer::start_in(&data_dir, &[]);
    assert!(
        server.admin_token.starts_with("mpk_"),
        "first start ran on the free port"
    );
    let (status, _) = server.api("GET", "/v1/projects", &server.admin_token, None);
    assert_eq!(status, 200);
}

#[test]
fn a_password_on_the_command_line_is_refused() {
    let url = format!("postgres://mpaka:{PASSWORD}@127.0.0.1:1/mpaka");
    for args in [
        vec!["serve", "--addr", "127.0.0.1:0", "--database-url", &url],
        vec!["admin", "--database-url", &url, "devices", "--project", PROJECT],
        vec![
            "export",
            "--database-url",
            "host=127.0.0.1 password=x",
            "--out",
            "unused",
        ],
    ] {
        let (output, took) = mpaka(&args, &[]);
        let message = stderr(&output);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            message.contains("MPAKA_DATABASE_URL") && message.contains("--database-url-file"),
            "{message}"
        );
        assert!(!message.contains(PASSWORD), "{message}");
        assert!(took < Duration::from_secs(2), "refused before connecting: {took:?}");
    }
}

#[test]
fn a_wrong_postgres_address_is_told_at_once_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("database-url");
    let closed = format!("postgres://mpaka:{PASSWORD}@127.0.0.1:1/mpaka");
    std::fs::write(&file, format!("{closed}\n")).unwrap();
    let file = file.to_str().unwrap();
    let malformed = format!("postgres://mpaka:{PASSWORD}@127.0.0.1:notaport/mpaka");
    type Case<'a> = (&'a [&'a str], Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 4] = [
        (
            &["--database-url-file", file],
            vec![],
            "mpaka@127.0.0.1:1/mpaka: connection refused",
        ),
        (
            &[],
            vec![("MPAKA_DATABASE_URL_FILE", file)],
            "mpaka@127.0.0.1:1/mpaka: connection refused",
        ),
        (
            &[],
            vec![("MPAKA_DATABASE_URL", &closed)],
            "mpaka@127.0.0.1:1/mpaka: connection refused",
        ),
        (
            &[],
            vec![("MPAKA_DATABASE_URL", &malformed)],
            "the PostgreSQL URL is malformed",
        ),
    ];
    for (flags, env, expected) in cases {
        for command in [
            &["serve", "--addr", "127.0.0.1:0"][..],
            &["admin", "devices", "--project", PROJECT],
        ] {
            let args: Vec<&str> = command.iter().chain(flags).copied().collect();
            let (output, took) = mpaka(&args, &env);
            let message = stderr(&output);
            assert!(!output.status.success(), "{args:?}");
            assert_eq!(message.lines().count(), 1, "one line, no pool noise: {message}");
            assert!(message.contains(expected), "{args:?} {env:?}: {message}");
            assert!(!message.contains(PASSWORD), "{message}");
            assert!(took < Duration::from_secs(5), "{args:?}: {took:?}");
        }
    }
}

#[test]
fn a_database_url_file_with_a_password_is_used() {
    let url = fresh_database_url();
    let with_password = url.replacen('@', &format!(":{PASSWORD}@"), 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("database-url");
    std::fs::write(&file, with_password).unwrap();
    let file = file.to_str().unwrap();
    let (output, _) = mpaka(
        &[
            "admin",
            "--database-url-file",
            file,
            "create-project",
            "goma",
            "--name",
            "Goma",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let (output, _) = mpaka(
        &["admin", "create-project", "uvira", "--name", "Uvira"],
        &[("MPAKA_DATABASE_URL_FILE", file)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // A missing database is named (the cluster trusts any password).
    let (output, _) = mpaka(
        &["admin", "devices", "--project", "goma"],
        &[("MPAKA_DATABASE_URL", &url.replace("/mpaka_test", "/no_such_database"))],
    );
    assert!(
        stderr(&output).contains("database \"no_such_database\" does not exist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn exports_are_readable_by_their_user_only() {
    let server = TestServer::start();
    let data_dir = server.data_dir.to_str().unwrap();
    let out = server.data_dir.with_file_name("exports");
    let (output, _) = mpaka(&["export", "--data-dir", data_dir, "--out", out.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(mode(&out), 0o700);
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.iter().any(|f| f.ends_with("traders.csv")) && files.iter().any(|f| f.ends_with("indicators.csv")));
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let xlsx = server.data_dir.with_file_name("workbooks").join("export.xlsx");
    let (output, _) = mpaka(
        &[
            "export",
            "--data-dir",
            data_dir,
            "--format",
            "xlsx",
            "--out",
            xlsx.to_str().unwrap(),
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!((mode(xlsx.parent().unwrap()), mode(&xlsx)), (0o700, 0o600));
    // The data folder itself, while the server runs.
    let projects = server.data_dir.join("projects");
    assert_eq!((mode(&server.data_dir), mode(&projects)), (0o700, 0o700));
    let files: Vec<_> = [&server.data_dir, &projects]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()))
        .filter(|path| path.is_file())
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

#[test]
fn the_store_key_is_read_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("mpaka-data");
    let key_file = dir.path().join("store.key");
    std::fs::write(&key_file, format!("{}\n", "3c".repeat(32))).unwrap();
    let key_env = [("MPAKA_STORE_KEY_FILE", key_file.to_str().unwrap())];
    let data = data_dir.to_str().unwrap();
    if !mpaka_server::server::sqlcipher_linked() {
        let (output, _) = mpaka(
            &["admin", "--data-dir", data, "create-project", "goma", "--name", "Goma"],
            &key_env,
        );
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("built without encryption at rest"),
            "{}",
            stderr(&output)
        );
        return;
    }
    let mut server = TestServer::start_in(&data_dir, &key_env);
    assert!(server.admin_token.starts_with("mpk_"));
    server.kill();
    let store = std::fs::read(data_dir.join("projects").join(format!("{PROJECT}.mpaka"))).unwrap();
    assert!(!store.windows(15).any(|w| w == b"SQLite format 3"), "encrypted");
    // Without the key, the commands say what is missing.
    let (output, _) = mpaka(&["admin", "--data-dir", data, "devices", "--project", PROJECT], &[]);
    assert!(stderr(&output).contains("may be encrypted"), "{}", stderr(&output));
    let (output, _) = mpaka(
        &["admin", "--data-dir", data, "devices", "--project", PROJECT],
        &key_env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let hex = "3c".repeat(32);
    let (output, _) = mpaka(
        &["admin", "--data-dir", data, "devices", "--project", PROJECT],
        &[("MPAKA_STORE_KEY", &hex)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn the_per_address_connection_cap_is_set_from_the_environment() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(&dir.path().join("data"), &[("MPAKA_MAX_CONNECTIONS_PER_ADDRESS", "1")]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let health = || {
        let mut socket = std::net::TcpStream::connect(&addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        socket
            .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).is_ok() && answer.starts_with("HTTP/1.1 200")
    };
    assert!(health(), "served while nothing else is open");
    // One half-sent request holds this address's only slot...
    let mut held = std::net::TcpStream::connect(&addr).unwrap();
    held.write_all(b"GET /v1/health HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!health(), "a second connection from the address waits");
    // ...and once it goes, the address is served again. The server sees
    // the close a moment later, and until then a third connection finds
    // the address's waiting place taken and is closed at once: retry.
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !health() {
        assert!(std::time::Instant::now() < deadline, "served once the first closed");
        std::thread::sleep(Duration::from_millis(100));
    }
}
