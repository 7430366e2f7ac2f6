//! A real `mpaka serve` in a child process, and enrolled devices.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mpaka_core::form::Environment;
use mpaka_core::sync::{CancelToken, SyncClient, SyncConfig, SyncError, SyncReport};
use mpaka_core::{Store, StoreOptions, WallClock};
use serde_json::{Value, json};

/// The project first start creates.
pub const PROJECT: &str = "rusizi-bukavu";

/// The `mpaka` binary: `$MPAKA_BIN`, or next to the test executable's
/// folder (target/debug/mpaka). `cargo test --workspace` builds it.
pub fn mpaka_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MPAKA_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("mpaka");
    assert!(
        bin.exists(),
        "the mpaka binary is not built at {}: run `cargo build -p mpaka-cli` (or `cargo test --workspace`), \
         or set MPAKA_BIN",
        bin.display()
    );
    bin
}

/// Where a test server on `data_dir` writes its log (appended across restarts).
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.with_extension("log")
}

/// `mpaka serve` on a free port of 127.0.0.1, with its own data folder.
pub struct TestServer {
    child: Option<Child>,
    pub url: String,
    pub admin_token: String,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    http: reqwest::blocking::Client,
}

impl TestServer {
    /// A server on a fresh data folder (first start: project, forms, admin).
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("mpaka-data");
        let mut server = TestServer::start_in(&data_dir, &[]);
        server._dir = Some(dir);
        server
    }

    /// A server on `data_dir`, with extra environment variables. On a data
    /// folder that was set up before, `admin_token` is empty.
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> TestServer {
        TestServer::spawn(&["--data-dir".as_ref(), data_dir.as_os_str()], data_dir, env)
    }

    /// A server on a fresh data folder whose process may map at most
    /// `kib` KiB of address space (`ulimit -v`, set in the child's shell
    /// before it becomes `mpaka serve`): a request that tries to take more
    /// memory than that aborts the server, which the test then sees.
    pub fn start_capped(kib: u64) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("mpaka-data");
        let mut server = TestServer::spawn_with(
            &["--data-dir".as_ref(), data_dir.as_os_str()],
            &data_dir,
            &[],
            Some(kib),
        );
        server._dir = Some(dir);
        server
    }

    /// A server process on the PostgreSQL database at `database_url`
    /// (see [`fresh_database_url`]), logging to `log_stem`.log. Only the
    /// process that set the database up learns an `admin_token`.
    pub fn start_postgres(database_url: &str, log_stem: &Path) -> TestServer {
        TestServer::spawn(&["--database-url".as_ref(), database_url.as_ref()], log_stem, &[])
    }

    fn spawn(storage: &[&std::ffi::OsStr], data_dir: &Path, env: &[(&str, &str)]) -> TestServer {
        TestServer::spawn_with(storage, data_dir, env, None)
    }

    fn spawn_with(
        storage: &[&std::ffi::OsStr],
        data_dir: &Path,
        env: &[(&str, &str)],
        address_space_kib: Option<u64>,
    ) -> TestServer {
        let mut command = match address_space_kib {
            None => Command::new(mpaka_bin()),
            Some(kib) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -v {kib} && exec \"$@\""))
                    .arg("sh")
                    .arg(mpaka_bin());
                shell
            }
        };
        command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(storage)
            .env("RUST_LOG", "info")
            .env("MPAKA_REQUESTS_PER_MINUTE", "1000000")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log_path(data_dir))
                    .unwrap(),
            ));
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("mpaka serve starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("mpaka serve prints its address").unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in `{first}`"))
            .to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in lines.map_while(Result::ok) {
                if let Some(token) = line.split_whitespace().find(|w| w.starts_with("mpk_")) {
                    let _ = tx.send(token.to_owned());
                    sent = true;
                }
                if !sent && line.starts_with("then type the code") {
                    break;
                }
            }
        });
        let admin_token = rx.recv_timeout(Duration::from_millis(500)).unwrap_or_default();
        TestServer {
            child: Some(child),
            url,
            admin_token,
            data_dir: data_dir.to_owned(),
            _dir: None,
            http: reqwest::blocking::Client::new(),
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(&self.data_dir)).unwrap_or_default()
    }

    /// Kills the server process with SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        child.wait().unwrap()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A JSON API call; returns the status and the JSON body.
    pub fn api(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Adds a user to the first project (as the admin).
    pub fn add_user(&self, username: &str, role: &str) {
        let (status, body) = self.api(
            "POST",
            &format!("/v1/projects/{PROJECT}/users"),
            &self.admin_token,
            Some(json!({"username": username, "role": role})),
        );
        assert_eq!(status, 201, "{body}");
    }

    /// An enrollment code for a user of the first project.
    pub fn enrollment_code(&self, username: &str) -> String {
        let (status, body) = self.api(
            "POST",
            &format!("/v1/projects/{PROJECT}/enrollments"),
            &self.admin_token,
            Some(json!({"username": username})),
        );
        assert_eq!(status, 201, "{body}");
        body["code"].as_str().unwrap().to_owned()
    }

    /// Adds a user and enrolls a device for it with a store at `path`.
    pub fn device(&self, username: &str, role: &str, path: &Path) -> Device {
        self.device_with(username, role, path, StoreOptions::default())
    }

    /// Like [`TestServer::device`], with store options (a wrong clock...).
    pub fn device_with(&self, username: &str, role: &str, path: &Path, options: StoreOptions) -> Device {
        self.add_user(username, role);
        let store = Store::open(path, options).unwrap();
        let token = self.enroll(username, &store);
        Device {
            store,
            token,
            username: username.to_owned(),
            path: path.to_owned(),
        }
    }

    /// Enrolls `store` as a device of an existing user; returns its token.
    pub fn enroll(&self, username: &str, store: &Store) -> String {
        let code = self.enrollment_code(username);
        let (status, body) = self.api(
            "POST",
            "/v1/enroll",
            "",
            Some(json!({"code": code, "node_id": store.node().to_string(), "device_name": format!("{username}'s phone")})),
        );
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// The server's project store, opened alongside the server (WAL lets
    /// both read; writes are serialized by SQLite).
    pub fn project_store(&self) -> Store {
        Store::open(
            self.data_dir.join("projects").join(format!("{PROJECT}.mpaka")),
            StoreOptions::default(),
        )
        .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database of its own for one test: a fresh schema in the
/// `MPAKA_TEST_DATABASE_URL` database, as a URL whose connections use it.
/// Without that variable the test fails and says how to get one.
pub fn fresh_database_url() -> String {
    let base = std::env::var("MPAKA_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "MPAKA_TEST_DATABASE_URL is not set: the PostgreSQL tests need a server. Run ./scripts/test-all \
             (it starts a throwaway cluster), or eval \"$(scripts/pg-throwaway start)\" first"
        )
    });
    let schema = format!("e2e_{:016x}", fastrand::u64(..));
    let status = Command::new("psql")
        .args([base.as_str(), "-q", "-c", &format!("CREATE SCHEMA {schema}")])
        .status()
        .unwrap_or_else(|e| panic!("psql (PostgreSQL's client) is needed to set up the test database: {e}"));
    assert!(status.success(), "creating schema {schema} failed");
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

/// An enrolled device: a store file and its token.
pub struct Device {
    pub store: Store,
    pub token: String,
    pub username: String,
    pub path: PathBuf,
}

/// Sync settings for tests: short pauses between retries.
pub fn test_sync_config() -> SyncConfig {
    SyncConfig {
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(5),
        max_retries: 8,
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(100),
        ..SyncConfig::default()
    }
}

impl Device {
    /// Syncs with `url` using [`test_sync_config`].
    pub fn sync(&self, url: &str) -> Result<SyncReport, SyncError> {
        self.sync_with(url, test_sync_config())
    }

    /// Syncs with a given configuration.
    pub fn sync_with(&self, url: &str, config: SyncConfig) -> Result<SyncReport, SyncError> {
        SyncClient::new(config)?.sync(&self.store, url, &self.token, &(), &CancelToken::new())
    }

    /// The form environment of this device's enumerator.
    pub fn environment(&self, clock: &Arc<dyn WallClock>) -> Environment {
        let now = chrono::DateTime::from_timestamp_millis(clock.now_ms() as i64)
            .unwrap()
            .fixed_offset();
        Environment {
            now,
            device_id: format!("{}-phone", self.username),
            username: self.username.clone(),
            language: "English (en)".into(),
        }
    }
}
