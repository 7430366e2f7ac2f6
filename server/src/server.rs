//! The data folder, first start, and serving with graceful shutdown.
//!
//! ```text
//! mpaka-data/
//!   server.sqlite          accounts (accounts.rs)
//!   projects/<slug>.mpaka  one core store per project: ops, merged state, forms
//! ```
//!
//! With `--database-url postgres://…` the accounts and every project live
//! in that database instead (storage/postgres.rs), shared by every server
//! process pointed at it.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mpaka_core::form::FormDefinition;
use mpaka_core::sample::{SESSION_ATTENDANCE_XLSX, TRADER_SURVEY_XLSX};
use mpaka_core::{EntityId, NodeId, Op, Store, StoreKey, StoreOptions};

use crate::accounts::{AccountError, Accounts, Project, Role, Secret};
use crate::exchange::ExchangeLimits;
use crate::export::{ExportContext, ExportOptions};
use crate::indicators::Indicators;
use crate::review::{Author, Keep, ReviewError};
use crate::storage::postgres::{ConnectError, Postgres};
use crate::storage::{ProjectLog, StorageError};

/// The project first start creates.
pub const FIRST_PROJECT: &str = "rusizi-bukavu";

/// Something the server cannot do or start with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data folder cannot be used.
    #[error("data folder {path}: {source}")]
    AppService {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Accounts.
    #[error(transparent)]
    Accounts(#[from] AccountError),
    /// A project store.
    #[error("project store: {0}")]
    Store(#[from] mpaka_core::Error),
    /// The project storage (SQLite files or PostgreSQL).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A form that does not compile; one line per mistake.
    #[error("the form has {} mistake(s):\n{}", .0.len(), .0.join("\n"))]
    Form(Vec<String>),
    /// A form version already published with other content.
    #[error(
        "form `{form_id}` version `{version}` is already published; change settings.version to publish a new version"
    )]
    FormVersionExists {
        /// form_id.
        form_id: String,
        /// version.
        version: String,
    },
    /// An M&E officer's change that cannot be made.
    #[error(transparent)]
    Review(#[from] ReviewError),
    /// Binding or serving failed.
    #[error("cannot serve on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The PostgreSQL database cannot be reached or used.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A store key was given to a build without SQLCipher: refused rather
    /// than writing personal data in clear that the operator asked to be
    /// encrypted.
    #[error(
        "a store key was given (MPAKA_STORE_KEY or MPAKA_STORE_KEY_FILE), but this mpaka was built without \
         encryption at rest: build it with `cargo build --release -p mpaka-cli --features encryption` \
         (needs OpenSSL's headers), or unset the key to keep the data folder in clear"
    )]
    EncryptionUnavailable,
    /// The store key cannot be read or is not a key.
    #[error(
        "store key from {from}: {reason}; the key is 64 hexadecimal digits (32 random bytes, e.g. from \
         `openssl rand -hex 32`)"
    )]
    StoreKey {
        /// Where it was read from (a variable or a file; never the key).
        from: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `server.sqlite` does not read: a wrong key, a missing one, or damage.
    #[error(
        "cannot open {path}: {}",
        if *.keyed {
            "the store key is wrong, or the data folder was written without one (nothing was read or changed)"
        } else {
            "it is not a readable database: the data folder may be encrypted (give its key in \
             MPAKA_STORE_KEY_FILE or MPAKA_STORE_KEY), or the file is damaged (restore it from a backup)"
        }
    )]
    Unreadable {
        /// server.sqlite.
        path: PathBuf,
        /// Whether a key was given.
        keyed: bool,
    },
    /// `server.sqlite` is missing or empty while project stores exist: the
    /// accounts were lost, and a first start would lock every device out.
    #[error(
        "{path} is empty or missing, but {stores} project store(s) exist in {projects}: the accounts database \
         (users, devices, passwords, review flags) was lost. Restore server.sqlite from a backup; \
         a first start here would lock every enrolled device out. To start over on purpose, move \
         {projects} away first"
    )]
    AccountsLost {
        /// server.sqlite.
        path: PathBuf,
        /// The projects folder.
        projects: PathBuf,
        /// How many store files it holds.
        stores: usize,
    },
    /// A file or folder the server writes is read-only for it: it would
    /// start, serve reads, and answer every write with a 500.
    #[error(
        "{path} is not writable by this process ({source}): give the server's user write access to the data \
         folder and every file in it (server.sqlite, projects/*.mpaka and their -wal and -shm files)"
    )]
    NotWritable {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A project's store is damaged, foreign, or lost: the server does not
    /// start on it, so that devices do not retry against a 500 forever.
    #[error(
        "project `{project}`: {reason}. Restore {path} from a backup (with its -wal file, if any); \
         the server does not start with a damaged project store"
    )]
    ProjectStore {
        /// The project's slug.
        project: String,
        /// Its store file.
        path: PathBuf,
        /// What is wrong (names no data).
        reason: String,
    },
}

/// Limits on what one request may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body on the wire (compressed).
    pub max_body_bytes: usize,
    /// Largest request body once decompressed.
    pub max_decompressed_bytes: usize,
    /// Requests per device per minute.
    pub requests_per_minute: u32,
    /// Failed enrollment attempts per client address per minute; also
    /// dashboard logins per address, and failed logins per user name and
    /// address.
    pub enroll_failures_per_minute: u32,
    /// Failed dashboard logins per user name per minute, from all
    /// addresses together (guesses spread over many addresses). Addresses
    /// that have not failed at that user are not stopped by it, nor are
    /// those it logged in from in the last 30 days, whose failures do not
    /// count towards it either (attackers filling it would otherwise lock
    /// the user out at her own address after one typo).
    pub login_failures_per_user_per_minute: u32,
    /// Time for a request's line and headers to arrive from the first byte
    /// read, and so also how long an idle connection stays open: a client
    /// sending headers a line at a time is cut off (slowloris).
    pub header_read_timeout: std::time::Duration,
    /// Shortest time a request body may take to arrive, whatever its size.
    pub body_timeout_min: std::time::Duration,
    /// Longest time a request body may take to arrive.
    pub body_timeout_max: std::time::Duration,
    /// Slowest upload rate allowed, in bytes per second: the body deadline
    /// is its `Content-Length` at this rate, within the bounds above.
    pub body_min_bytes_per_second: u64,
    /// Connections served at once; more wait in the kernel's accept queue
    /// (holding no file descriptor of the server's) until one closes.
    /// Lowered at start to fit the open-file limit.
    pub max_connections: usize,
    /// Connections served at once from one client address (an IPv6
    /// address's /64), so that one client cannot take every slot. Large,
    /// because many phones can share one carrier NAT address (and behind a
    /// reverse proxy every client has the proxy's). Beyond it as many
    /// again wait, holding a slot but not served, until one of that
    /// address's closes; more are closed at once.
    pub max_connections_per_address: usize,
    /// How long a write to a client may make no progress before its
    /// connection is closed: the header timeout covers only reading, and a
    /// client asking for a large response without reading it would hold
    /// its slot for ever. Phones on 2G are slow but keep reading.
    pub write_stall_timeout: std::time::Duration,
    /// How long shutdown waits for connections to finish the request they
    /// are in; those still open are then dropped (a request's database
    /// work already started still finishes, see `http::serve`), so one
    /// stalled client cannot hold up a restart until SIGKILL.
    pub shutdown_timeout: std::time::Duration,
    /// Per-exchange limits.
    pub exchange: ExchangeLimits,
}

impl Limits {
    /// How long a body of `length` bytes (`None`: not announced, taken as
    /// the largest allowed) may take to arrive.
    pub fn body_deadline(&self, length: Option<u64>) -> std::time::Duration {
        let length = length.unwrap_or(self.max_body_bytes as u64);
        let at_min_rate = std::time::Duration::from_secs(length / self.body_min_bytes_per_second.max(1));
        at_min_rate.clamp(self.body_timeout_min, self.body_timeout_max.max(self.body_timeout_min))
    }
}

impl Default for Limits {
    /// Timeouts for phones on 2G: a 256 KB batch takes 10 to 20 s there,
    /// and gets 125 s (2 KB/s, at least 60 s, at most 10 minutes).
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 48 << 20,
            requests_per_minute: 300,
            enroll_failures_per_minute: 10,
            login_failures_per_user_per_minute: 100,
            header_read_timeout: std::time::Duration::from_secs(10),
            body_timeout_min: std::time::Duration::from_secs(60),
            body_timeout_max: std::time::Duration::from_secs(600),
            body_min_bytes_per_second: 2_048,
            max_connections: 4_096,
            max_connections_per_address: 256,
            write_stall_timeout: std::time::Duration::from_secs(60),
            shutdown_timeout: std::time::Duration::from_secs(30),
            exchange: ExchangeLimits::default(),
        }
    }
}

/// The application service behind every request and every `mpaka`
/// command: the accounts, each project's op log (SQLite files in the data
/// folder or a PostgreSQL database), this process as the writer of M&E
/// officers' changes, and the indicators cache. (It was `DataDir`: it is
/// more than a folder.)
#[derive(Debug)]
pub struct AppService {
    /// Accounts database.
    pub accounts: Accounts,
    projects: Projects,
    /// This process as the writer of M&E officers' changes.
    pub author: Author,
    /// Indicators per project id, with the log head they were computed at.
    indicators: Arc<Mutex<HashMap<i64, Arc<Indicators>>>>,
    /// Projects whose indicators are being recomputed in the background.
    refreshing: Arc<Mutex<std::collections::HashSet<i64>>>,
}

/// Where project logs live.
#[derive(Debug)]
enum Projects {
    /// One core store file per project, opened once each.
    Files {
        dir: PathBuf,
        open: Mutex<HashMap<i64, Arc<Store>>>,
        /// The key every store here is encrypted with, if any.
        key: Option<StoreKey>,
    },
    /// All in one PostgreSQL database.
    Postgres(Postgres),
}

impl AppService {
    /// Opens (creating if needed) the data folder: SQLite files, in clear.
    pub fn open(dir: &Path) -> Result<AppService, ServerError> {
        AppService::open_with_key(dir, None)
    }

    /// Opens (creating if needed) the data folder, its databases encrypted
    /// with `key` (SQLCipher) when given: the accounts and every project
    /// store. Folders are made 0700 and database files 0600 whatever the
    /// umask (see [`create_private_dir`]), since they name vulnerable people.
    /// Refused when `server.sqlite` is lost while project stores exist
    /// ([`ServerError::AccountsLost`]): only a folder without stores is a
    /// first start.
    pub fn open_with_key(dir: &Path, key: Option<StoreKey>) -> Result<AppService, ServerError> {
        let io = |source| ServerError::AppService {
            path: dir.to_owned(),
            source,
        };
        if key.is_some() && !sqlcipher_linked() {
            return Err(ServerError::EncryptionUnavailable);
        }
        let projects = dir.join("projects");
        create_private_dir(&projects).map_err(io)?;
        for folder in [dir, &projects] {
            narrow_folder(folder);
        }
        let accounts_path = dir.join("server.sqlite");
        let stores = store_files(&projects).map_err(io)?;
        if !stores.is_empty() && is_empty_database(&accounts_path) {
            return Err(ServerError::AccountsLost {
                path: accounts_path,
                projects,
                stores: stores.len(),
            });
        }
        create_private_file(&accounts_path).map_err(io)?;
        let accounts = Accounts::on_sqlite(open_accounts(&accounts_path, key.as_ref())?)?;
        Ok(AppService {
            accounts,
            projects: Projects::Files {
                dir: dir.to_owned(),
                open: Mutex::new(HashMap::new()),
                key,
            },
            author: Author::new(),
            indicators: Arc::default(),
            refreshing: Arc::default(),
        })
    }

    /// Connects to a PostgreSQL database (`postgres://…`) with up to
    /// `connections` pooled connections, bringing its schema up to date.
    /// Fails at once with the cause (refused, authentication, malformed
    /// URL; see [`ConnectError`]) rather than after the pool's timeout.
    pub fn connect(url: &str, connections: u32) -> Result<AppService, ServerError> {
        let db = Postgres::connect(url, connections)?;
        Ok(AppService {
            accounts: Accounts::on_postgres(db.pool()),
            projects: Projects::Postgres(db),
            author: Author::new(),
            indicators: Arc::default(),
            refreshing: Arc::default(),
        })
    }

    /// The log of `project` (a store file opened on first use, then shared;
    /// or its rows in PostgreSQL).
    pub fn store(&self, project: &Project) -> Result<Arc<dyn ProjectLog>, ServerError> {
        match &self.projects {
            Projects::Files { dir, open, key } => {
                let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(store) = open.get(&project.id) {
                    return Ok(store.clone());
                }
                let path = store_path(dir, project);
                create_private_file(&path).map_err(|source| ServerError::AppService {
                    path: path.clone(),
                    source,
                })?;
                let options = StoreOptions {
                    key: key.clone(),
                    ..StoreOptions::default()
                };
                let store = Arc::new(Store::open(&path, options)?);
                open.insert(project.id, store.clone());
                Ok(store)
            }
            Projects::Postgres(db) => Ok(Arc::new(db.project(project.id))),
        }
    }

    /// Compiles an XLSForm (the bytes of an .xlsx, .xls, or pyxform's
    /// .csv or .md; `file_name` names the form when its settings do not,
    /// as pyxform names it) and publishes it in `project`.
    /// Republishing identical content is a no-op; a changed form needs a
    /// new `settings.version`, so submissions of older versions stay valid
    /// against the version they were made with.
    pub fn publish_form(
        &self,
        project: &Project,
        file: &[u8],
        file_name: Option<&str>,
        now_ms: u64,
    ) -> Result<FormDefinition, ServerError> {
        let stem = file_name.map(|name| {
            std::path::Path::new(name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(name)
        });
        let form = FormDefinition::from_spreadsheet(file, stem)
            .map_err(|errors| ServerError::Form(errors.iter().map(ToString::to_string).collect()))?;
        let store = self.store(project)?;
        if !store.save_form(&form, now_ms)? && store.form(&form.form_id, &form.version)?.as_ref() != Some(&form) {
            return Err(ServerError::FormVersionExists {
                form_id: form.form_id,
                version: form.version,
            });
        }
        Ok(form)
    }

    /// Resolves conflict `id` of `project` by keeping one side, as this
    /// process's [`Author`] (see [`crate::review::resolve_conflict`]).
    pub fn resolve_conflict(&self, project: &Project, id: i64, keep: Keep) -> Result<Op, ServerError> {
        let log = self.store(project)?;
        Ok(crate::review::resolve_conflict(
            log.as_ref(),
            &self.author,
            id,
            keep,
            now_ms(),
        )?)
    }

    /// Merges trader `duplicate` of `project` into `survivor`, as this
    /// process's [`Author`] (see [`crate::review::merge_traders`]).
    pub fn merge_traders(
        &self,
        project: &Project,
        duplicate: EntityId,
        survivor: EntityId,
    ) -> Result<Vec<Op>, ServerError> {
        let log = self.store(project)?;
        Ok(crate::review::merge_traders(
            log.as_ref(),
            &self.author,
            duplicate,
            survivor,
            now_ms(),
        )?)
    }

    /// Possible duplicate traders of `project`, without the groups an
    /// officer judged distinct people.
    pub fn duplicates(&self, project: &Project) -> Result<Vec<crate::review::DuplicateGroup>, ServerError> {
        let distinct = self.accounts.distinct_traders(project)?;
        let mut groups = crate::review::duplicates(self.store(project)?.as_ref())?;
        groups.retain(|g| !distinct.contains(&g.key));
        Ok(groups)
    }

    /// Records that a possible-duplicate group of `project` (its `key`) is
    /// distinct people; refused unless it is a group listed now.
    pub fn set_distinct(&self, project: &Project, key: &str, by: i64) -> Result<(), ServerError> {
        if !self.duplicates(project)?.iter().any(|g| g.key == key) {
            return Err(ServerError::Review(ReviewError::NoSuchGroup));
        }
        Ok(self.accounts.set_distinct_traders(project, key, by, now_ms() as i64)?)
    }

    /// What an export of `project` reads besides its log: forms, device
    /// clock offsets, review flags.
    pub fn export_context(&self, project: &Project, options: ExportOptions) -> Result<ExportContext, ServerError> {
        let device_offsets = self
            .accounts
            .devices(project)?
            .into_iter()
            .filter_map(|d| Some((d.node_id?.parse::<NodeId>().ok()?.to_sql(), d.clock_offset_ms?)))
            .collect();
        Ok(ExportContext {
            forms: self.store(project)?.forms()?,
            device_offsets,
            review_flags: self.accounts.review_flags(project)?,
            options,
        })
    }

    /// The indicators of `project` as of now: recomputed when its log moved
    /// since they were last computed (by any process), else cached. For
    /// exports and the API, which promise current figures.
    pub fn indicators(&self, project: &Project) -> Result<Arc<Indicators>, ServerError> {
        let log = self.store(project)?;
        let head = log.head()?;
        match self.cached_indicators(project) {
            Some(cached) if cached.head == head => Ok(cached),
            _ => self.compute_indicators(project, log.as_ref()),
        }
    }

    /// The indicators for a page: the cached ones at once, even if syncs
    /// moved the log since (then recomputed in the background, one run per
    /// project at a time), so that no page waits on a scan of the whole
    /// project. The second value is the log's head now: the figures are
    /// stale when it is past theirs.
    pub fn indicators_for_page(&self, project: &Project) -> Result<(Arc<Indicators>, u64), ServerError> {
        let log = self.store(project)?;
        let head = log.head()?;
        let Some(cached) = self.cached_indicators(project) else {
            return Ok((self.compute_indicators(project, log.as_ref())?, head));
        };
        if cached.head != head
            && self
                .refreshing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(project.id)
        {
            let (cache, refreshing, id) = (self.indicators.clone(), self.refreshing.clone(), project.id);
            std::thread::spawn(move || {
                match crate::indicators::compute(log.as_ref()) {
                    Ok(fresh) => remember(&cache, id, Arc::new(fresh)),
                    Err(e) => tracing::warn!(error = %e, "recomputing the indicators failed"),
                }
                refreshing.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            });
        }
        Ok((cached, head))
    }

    /// Computes every project's indicators into the cache (at start, off the
    /// request path); failures are logged, never fatal.
    pub fn warm_indicators(&self) {
        let projects = match self.accounts.projects() {
            Ok(p) => p,
            Err(e) => return tracing::warn!(error = %e, "cannot list projects to count their indicators"),
        };
        for project in projects {
            if let Err(e) = self.indicators(&project) {
                tracing::warn!(error = %e, project = project.slug, "counting the indicators failed");
            }
        }
    }

    fn cached_indicators(&self, project: &Project) -> Option<Arc<Indicators>> {
        self.indicators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&project.id)
            .cloned()
    }

    fn compute_indicators(&self, project: &Project, log: &dyn ProjectLog) -> Result<Arc<Indicators>, ServerError> {
        let fresh = Arc::new(crate::indicators::compute(log)?);
        remember(&self.indicators, project.id, fresh.clone());
        Ok(fresh)
    }

    /// Checks, before serving, what would otherwise show only as 500s to
    /// requests that devices retry for ever: that the data folder, its
    /// projects folder and every database file in them are writable by
    /// this process (after a crash or a copy, leftover -wal and -shm files
    /// let SQLite open a read-only database without complaint), and that
    /// every project's store opens and passes SQLite's quick check. The
    /// first failure is returned, naming the file and the cause. On
    /// PostgreSQL, connecting checked what there is to check.
    pub fn check_ready(&self) -> Result<(), ServerError> {
        let Projects::Files { dir, key, .. } = &self.projects else {
            return Ok(());
        };
        let projects_dir = dir.join("projects");
        for folder in [dir.as_path(), &projects_dir] {
            probe_folder(folder)?;
        }
        ensure_writable(&dir.join("server.sqlite"))?;
        for project in self.accounts.projects()? {
            let path = store_path(dir, &project);
            let damaged = |reason: String| ServerError::ProjectStore {
                project: project.slug.clone(),
                path: path.clone(),
                reason,
            };
            if is_empty_database(&path) {
                // A project nobody synced with yet may have no store; one
                // whose devices sent ops has lost it.
                let received: i64 = self.accounts.devices(&project)?.iter().map(|d| d.ops_received).sum();
                if received > 0 {
                    return Err(damaged(format!(
                        "its store is empty or missing, but its devices sent {received} op(s) to it"
                    )));
                }
            } else {
                ensure_writable(&path)?;
            }
            self.store(&project).map_err(|e| match e {
                ServerError::Store(core) => damaged(core.to_string()),
                other => damaged(other.to_string()),
            })?;
            quick_check(&path, key.as_ref()).map_err(damaged)?;
        }
        Ok(())
    }

    /// On a data folder without any admin: creates the first project with
    /// the shipped forms and an `admin` user, and returns an API token for
    /// it (shown once). `None` if the folder was set up before.
    pub fn first_start(&self, now_ms: u64) -> Result<Option<FirstStart>, ServerError> {
        if self.accounts.has_admin()? {
            return Ok(None);
        }
        let now = now_ms as i64;
        // Several processes may start on one fresh database at once: each
        // step tolerates another process having done it first.
        let project = match self.accounts.project(FIRST_PROJECT) {
            Ok(p) => p,
            Err(_) => match self
                .accounts
                .create_project(FIRST_PROJECT, "Rusizi II / Bukavu small-scale traders", now)
            {
                Err(AccountError::Exists(_)) => self.accounts.project(FIRST_PROJECT)?,
                other => other?,
            },
        };
        for form in [TRADER_SURVEY_XLSX, SESSION_ATTENDANCE_XLSX] {
            self.publish_form(&project, form, None, now_ms)?;
        }
        match self.accounts.add_user(None, "admin", Role::Admin, now) {
            Err(AccountError::Exists(_)) => return Ok(None),
            other => other?,
        };
        let token = self.accounts.issue_api_token(None, "admin", now)?;
        Ok(Some(FirstStart { project, token }))
    }
}

/// Caches a project's indicators, unless newer ones are there already (a
/// slower count, in the background or by a request, may finish last).
fn remember(cache: &Mutex<HashMap<i64, Arc<Indicators>>>, project: i64, fresh: Arc<Indicators>) {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.get(&project).is_none_or(|c| c.head <= fresh.head) {
        cache.insert(project, fresh);
    }
}

/// A project's store file in data folder `dir`.
fn store_path(dir: &Path, project: &Project) -> PathBuf {
    dir.join("projects").join(format!("{}.mpaka", project.slug))
}

/// Creates `dir` and its missing parents as 0700 (set explicitly: the
/// umask, 022 on most systems, would leave them open to every local user).
/// An existing folder is left as it is; see [`narrow`].
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Creates `path` as an empty 0600 file unless it exists, whatever the
/// umask. SQLite then gives the database's -wal and -shm files the same
/// mode.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    match open_private(path, false) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

/// Opens `path` for writing, created (or, with `truncate`, emptied) as
/// 0600 whatever the umask; an existing file is narrowed to 0600 too.
pub fn open_private(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if truncate {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = options.mode(0o600).open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Takes the permissions of `path` outside `mode` away (0o700 for a
/// folder, 0o600 for a file); a no-op when there are none.
pub fn narrow(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if current & !mode != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Narrows a folder written by an older mpaka (0755, its files 0644) to
/// 0700 and 0600. Best effort: a folder of another user or on a read-only
/// disk (a backup being exported) stays as it is, with a warning.
fn narrow_folder(folder: &Path) {
    let warn = |path: &Path, e: std::io::Error| {
        tracing::warn!(path = %path.display(), error = %e, "cannot make this readable by the server's user only");
    };
    if let Err(e) = narrow(folder, 0o700) {
        warn(folder, e);
    }
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file()
            && let Err(e) = narrow(&path, 0o600)
        {
            warn(&path, e);
        }
    }
}

/// The non-empty `*.mpaka` files in `projects`.
fn store_files(projects: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut stores = Vec::new();
    for entry in std::fs::read_dir(projects)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "mpaka") && !is_empty_database(&path) {
            stores.push(path);
        }
    }
    Ok(stores)
}

/// The file at `path-suffix` (SQLite's `-wal`, `-shm`).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether the database at `path` holds nothing: missing, or 0 bytes with
/// no write-ahead log to recover from.
fn is_empty_database(path: &Path) -> bool {
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    len(path) == 0 && len(&sidecar(path, "-wal")) == 0
}

/// Refuses a database whose file, -wal or -shm this process cannot open
/// for writing: SQLite would fall back to read-only and fail every write.
fn ensure_writable(database: &Path) -> Result<(), ServerError> {
    for path in [
        database.to_owned(),
        sidecar(database, "-wal"),
        sidecar(database, "-shm"),
    ] {
        if path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| ServerError::NotWritable { path, source })?;
        }
    }
    Ok(())
}

/// Refuses a folder this process cannot create files in (new project
/// stores, and SQLite's -wal and -shm files, are created there).
fn probe_folder(folder: &Path) -> Result<(), ServerError> {
    let probe = folder.join(format!(".mpaka-write-check-{}", std::process::id()));
    open_private(&probe, true)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|source| ServerError::NotWritable {
            path: folder.to_owned(),
            source,
        })
}

/// SQLite's quick check of a store (structure and page integrity, in one
/// pass over the file; its report names pages and indexes, never values).
fn quick_check(path: &Path, key: Option<&StoreKey>) -> Result<(), String> {
    let run = || -> rusqlite::Result<String> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(path, flags)?;
        if let Some(key) = key {
            apply_key(&conn, key)?;
            // The page size the core's Store gives encrypted stores.
            conn.pragma_update(None, "cipher_page_size", 8192)?;
        }
        conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
    };
    match run() {
        Ok(report) if report == "ok" => Ok(()),
        Ok(report) => Err(format!(
            "{} is damaged (SQLite's quick check: {report})",
            path.display()
        )),
        Err(e) => Err(format!("{} cannot be checked: {e}", path.display())),
    }
}

/// Gives SQLCipher `key` on a fresh connection, before anything reads: a
/// raw key as SQLCipher's `x'…'` literal (no stretching), a passphrase as
/// it is; SQLCipher's own log stays quiet (the typed errors say it better).
fn apply_key(conn: &rusqlite::Connection, key: &StoreKey) -> rusqlite::Result<()> {
    use rusqlite::OptionalExtension;
    let text = match key {
        StoreKey::Passphrase(p) => p.clone(),
        StoreKey::Raw(bytes) => format!("x'{}'", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    };
    conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()))
        .optional()?;
    conn.pragma_update(None, "key", text)
}

/// The accounts database at `path`, opened with `key` if given (as the
/// project stores: user and device names and the review flags' messages
/// are no one else's business either), and read once, so that a wrong or
/// missing key is told as such.
fn open_accounts(path: &Path, key: Option<&StoreKey>) -> Result<rusqlite::Connection, ServerError> {
    let sqlite = |e: rusqlite::Error| ServerError::Accounts(AccountError::Database(e.into()));
    let conn = rusqlite::Connection::open(path).map_err(sqlite)?;
    if let Some(key) = key {
        apply_key(&conn, key).map_err(sqlite)?;
    }
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(conn),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => Err(ServerError::Unreadable {
            path: path.to_owned(),
            keyed: key.is_some(),
        }),
        Err(e) => Err(sqlite(e)),
    }
}

/// Whether this build's SQLite is SQLCipher (the `encryption` feature of
/// mpaka-core, which this crate's `encryption` feature turns on). Asked of
/// SQLite itself: without SQLCipher, `PRAGMA key` is silently ignored and
/// the data would be written in clear.
pub fn sqlcipher_linked() -> bool {
    use rusqlite::OptionalExtension;
    rusqlite::Connection::open_in_memory()
        .and_then(|c| {
            c.query_row("PRAGMA cipher_version", [], |r| r.get::<_, String>(0))
                .optional()
        })
        .is_ok_and(|version| version.is_some())
}

/// The key of the data folder's databases, from the environment (never
/// from the command line, where every local user can read it with `ps`):
/// `MPAKA_STORE_KEY_FILE`, a file holding it, or `MPAKA_STORE_KEY`. `None`
/// when neither is set: the data folder is kept in clear.
pub fn store_key_from_env() -> Result<Option<StoreKey>, ServerError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let invalid = |from: &str, reason: &str| ServerError::StoreKey {
        from: from.into(),
        reason: reason.into(),
    };
    match (var("MPAKA_STORE_KEY"), var("MPAKA_STORE_KEY_FILE")) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(invalid(
            "MPAKA_STORE_KEY and MPAKA_STORE_KEY_FILE",
            "both are set; set one of them",
        )),
        (Some(text), None) => {
            let text = text
                .into_string()
                .map_err(|_| invalid("MPAKA_STORE_KEY", "it is not text"))?;
            parse_store_key(&text, "MPAKA_STORE_KEY").map(Some)
        }
        (None, Some(file)) => {
            let from = format!("MPAKA_STORE_KEY_FILE {}", Path::new(&file).display());
            let text = std::fs::read_to_string(&file).map_err(|e| invalid(&from, &e.to_string()))?;
            parse_store_key(&text, &from).map(Some)
        }
    }
}

/// A store key written as 64 hexadecimal digits (surrounding white space
/// ignored). Errors say what is wrong, never echoing the text.
pub fn parse_store_key(text: &str, from: &str) -> Result<StoreKey, ServerError> {
    let text = text.trim();
    let invalid = |reason: String| ServerError::StoreKey {
        from: from.into(),
        reason,
    };
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("it holds a character that is not a hexadecimal digit".into()));
    }
    if text.len() != 64 {
        return Err(invalid(format!("it is {} digits long, not 64", text.len())));
    }
    let digit = |b: u8| char::from(b).to_digit(16).unwrap_or(0) as u8;
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Ok(StoreKey::Raw(key))
}

/// What first start created.
#[derive(Debug)]
pub struct FirstStart {
    /// The first project.
    pub project: Project,
    /// The admin's API token.
    pub token: Secret,
}

/// The text of an enrollment QR code: the app scans it instead of typing
/// the server address and code.
pub fn enrollment_qr_text(server_url: &str, code: &str) -> String {
    format!("mpaka:enroll?server={server_url}&code={code}")
}

/// The server's wall clock in ms.
pub fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Serves `data` on `listener` until `shutdown` resolves, then stops
/// accepting and finishes the requests in flight within
/// `limits.shutdown_timeout` (a batch already being applied always
/// completes its transaction; its device resends it if the answer was
/// cut, and the server acknowledges it again). Slow or idle clients are cut off and
/// connections capped as `limits` say (see [`crate::http::serve`]).
pub async fn serve(
    data: Arc<AppService>,
    limits: Limits,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::http::serve(crate::http::router(data, limits), &limits, listener, shutdown).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use mpaka_core::{Collection, EntityId};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A data folder after first start, with a trader of that name written.
    fn data_with_trader(dir: &Path, key: Option<StoreKey>, name: &str) -> (AppService, Project) {
        let data = AppService::open_with_key(dir, key).unwrap();
        data.first_start(now_ms()).unwrap();
        let project = data.accounts.project(FIRST_PROJECT).unwrap();
        let mut fields = mpaka_core::sample::trader(1);
        fields.insert("full_name".into(), serde_json::json!(name));
        write_trader(&data, &project, fields);
        (data, project)
    }

    /// A new trader record, written by the server.
    fn write_trader(data: &AppService, project: &Project, fields: mpaka_core::Fields) {
        let log = data.store(project).unwrap();
        data.author
            .write(
                log.as_ref(),
                vec![(Collection::Traders, EntityId::random(), fields)],
                now_ms(),
            )
            .unwrap();
    }

    /// The data folder's databases with their -wal and -shm files.
    fn database_files(dir: &Path) -> Vec<PathBuf> {
        let store = dir.join("projects").join(format!("{FIRST_PROJECT}.mpaka"));
        let accounts = dir.join("server.sqlite");
        [accounts, store]
            .iter()
            .flat_map(|db| [db.clone(), sidecar(db, "-wal"), sidecar(db, "-shm")])
            .collect()
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_data_folder_is_readable_by_its_user_only_whatever_the_umask() {
        // SAFETY: umask(2) cannot fail; 022 is the usual umask, under which
        // files used to be created 0644.
        unsafe { libc::umask(0o022) };
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("mpaka-data");
        let (data, _) = data_with_trader(&dir, None, "Mukamana Eliane");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("projects")), 0o700);
        let files = database_files(&dir);
        for file in &files {
            assert!(file.exists(), "{} exists while the server runs", file.display());
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        drop(data);
        // A folder an older mpaka left open is narrowed at the next open.
        chmod(&dir, 0o755);
        chmod(&dir.join("projects"), 0o755);
        chmod(&files[0], 0o644);
        chmod(&files[3], 0o664);
        let _data = AppService::open(&dir).unwrap();
        assert_eq!(
            [
                mode(&dir),
                mode(&dir.join("projects")),
                mode(&files[0]),
                mode(&files[3])
            ],
            [0o700, 0o700, 0o600, 0o600]
        );
    }

    #[test]
    fn a_store_key_encrypts_the_data_folder() {
        let dir = tempfile::tempdir().unwrap();
        let key = parse_store_key(&"5a".repeat(32), "test").unwrap();
        if !sqlcipher_linked() {
            // A build without SQLCipher refuses the key, creating nothing.
            let refused = AppService::open_with_key(dir.path(), Some(key)).unwrap_err();
            assert!(matches!(refused, ServerError::EncryptionUnavailable));
            assert!(refused.to_string().contains("--features encryption"));
            assert!(!dir.path().join("server.sqlite").exists());
            return;
        }
        let name = "Mukamana Eliane";
        let (data, project) = data_with_trader(dir.path(), Some(key.clone()), name);
        data.accounts
            .add_user(Some(&project), "amina", Role::Enumerator, 0)
            .unwrap();
        for file in database_files(dir.path()) {
            let bytes = std::fs::read(&file).unwrap();
            for clear in [name.as_bytes(), b"amina", b"trader_survey", b"SQLite format 3"] {
                assert!(
                    !bytes.windows(clear.len()).any(|w| w == clear),
                    "{} holds {:?} in clear",
                    file.display(),
                    String::from_utf8_lossy(clear)
                );
            }
        }
        drop(data);
        // It reopens with the key, and passes the start-up checks.
        let data = AppService::open_with_key(dir.path(), Some(key)).unwrap();
        data.check_ready().unwrap();
        assert!(data.accounts.user(Some(&project), "amina").is_ok());
        let mut names = Vec::new();
        let log = data.store(&project).unwrap();
        log.scan_fields(Collection::Traders, &["full_name"], &mut |_, v| {
            names.push(v[0].clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(names, [serde_json::json!(name)]);
        drop(data);
        // Without it, or with another, it does not, and says why.
        let without = AppService::open(dir.path()).unwrap_err();
        assert!(
            matches!(without, ServerError::Unreadable { keyed: false, .. }),
            "{without}"
        );
        assert!(without.to_string().contains("MPAKA_STORE_KEY_FILE"));
        let other = parse_store_key(&"a5".repeat(32), "test").unwrap();
        let wrong = AppService::open_with_key(dir.path(), Some(other)).unwrap_err();
        assert!(matches!(wrong, ServerError::Unreadable { keyed: true, .. }), "{wrong}");
    }

    #[test]
    fn store_keys_are_64_hex_digits_and_never_echoed() {
        let StoreKey::Raw(bytes) = parse_store_key(&format!(" {}\n", "0f".repeat(32)), "k").unwrap() else {
            panic!("a raw key")
        };
        assert_eq!(bytes, [0x0f; 32]);
        for bad in [
            "",
            "s3cr3t-passphrase",
            &"0f".repeat(31),
            &format!("+{}", "f".repeat(63)),
        ] {
            let message = parse_store_key(bad, "MPAKA_STORE_KEY").unwrap_err().to_string();
            assert!(message.starts_with("store key from MPAKA_STORE_KEY: it "), "{message}");
            assert!(bad.is_empty() || !message.contains(bad), "{message}");
        }
    }

    #[test]
    fn an_empty_accounts_database_next_to_project_stores_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(data_with_trader(dir.path(), None, "Mukamana Eliane"));
        let accounts = dir.path().join("server.sqlite");
        for lost in ["empty", "missing"] {
            std::fs::write(&accounts, b"").unwrap();
            if lost == "missing" {
                std::fs::remove_file(&accounts).unwrap();
            }
            let refused = AppService::open(dir.path()).unwrap_err();
            assert!(
                matches!(refused, ServerError::AccountsLost { stores: 1, .. }),
                "{lost}: {refused}"
            );
            assert!(refused.to_string().contains("Restore server.sqlite from a backup"));
            assert_eq!(std::fs::metadata(&accounts).map_or(0, |m| m.len()), 0, "left as it was");
        }
        // A folder without stores is a first start.
        std::fs::remove_dir_all(dir.path().join("projects")).unwrap();
        let data = AppService::open(dir.path()).unwrap();
        assert!(data.first_start(now_ms()).unwrap().is_some());
    }

    #[test]
    fn damaged_or_lost_project_stores_are_refused_at_start() {
        let store_of = |dir: &Path| dir.join("projects").join(format!("{FIRST_PROJECT}.mpaka"));
        type Damage = (&'static str, fn(&Path));
        let damages: [Damage; 4] = [
            ("zeroed header", |path| {
                let mut bytes = std::fs::read(path).unwrap();
                bytes[..100].fill(0);
                std::fs::write(path, bytes).unwrap();
            }),
            ("foreign application_id", |path| {
                let mut bytes = std::fs::read(path).unwrap();
                bytes[68..72].copy_from_slice(&0x0f0f_0f0fu32.to_be_bytes());
                std::fs::write(path, bytes).unwrap();
            }),
            ("truncated", |path| {
                let len = std::fs::metadata(path).unwrap().len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .unwrap()
                    .set_len(len / 2)
                    .unwrap();
            }),
            ("lost", |path| std::fs::remove_file(path).unwrap()),
        ];
        for (damage, apply) in damages {
            let dir = tempfile::tempdir().unwrap();
            let (data, project) = data_with_trader(dir.path(), None, "Mukamana Eliane");
            for i in 0..200 {
                write_trader(&data, &project, mpaka_core::sample::trader(i));
            }
            // Devices sent ops to it (for "lost": an empty store is no news
            // on a project nobody synced with).
            data.accounts
                .add_user(Some(&project), "amina", Role::Enumerator, 0)
                .unwrap();
            let (code, _) = data
                .accounts
                .issue_enrollment(&project, "amina", (1, Role::Admin), now_ms() as i64)
                .unwrap();
            let (enrolled, _) = data
                .accounts
                .enroll(code.expose(), NodeId::random(), "phone", now_ms() as i64)
                .unwrap();
            data.accounts
                .record_sync(enrolled.device_id, 5, 0, None, None, now_ms() as i64)
                .unwrap();
            drop(data);
            apply(&store_of(dir.path()));
            let before = std::fs::read(store_of(dir.path())).ok();
            // The admin commands still open the folder; serving is refused.
            let data = AppService::open(dir.path()).unwrap();
            let refused = data.check_ready().unwrap_err();
            let message = refused.to_string();
            assert!(
                matches!(refused, ServerError::ProjectStore { .. }),
                "{damage}: {message}"
            );
            assert!(
                message.contains(FIRST_PROJECT) && message.contains("rusizi-bukavu.mpaka"),
                "{damage}: {message}"
            );
            drop(data);
            if damage != "lost" {
                assert_eq!(
                    std::fs::read(store_of(dir.path())).ok(),
                    before,
                    "{damage}: left untouched"
                );
            }
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn a_data_folder_it_cannot_write_is_refused_at_start() {
        // As the probe did: a copy of a running server's folder (with its
        // -wal and -shm files), readable but not writable by the server's
        // user. As root, the check runs as `nobody` (setfsuid is per thread).
        let root = unsafe { libc::geteuid() } == 0;
        let parent = tempfile::tempdir().unwrap();
        chmod(parent.path(), 0o755);
        let source = parent.path().join("running");
        let (data, _) = data_with_trader(&source, None, "Mukamana Eliane");
        for (folders, name) in [(0o755, "folder"), (0o777, "files")] {
            let copy = parent.path().join(name);
            std::fs::create_dir_all(copy.join("projects")).unwrap();
            for file in database_files(&source) {
                let to = copy.join(file.strip_prefix(&source).unwrap());
                std::fs::copy(&file, to).unwrap();
            }
            for file in database_files(&copy) {
                chmod(&file, if root { 0o644 } else { 0o444 });
            }
            let folders = if root || folders == 0o777 { folders } else { 0o555 };
            chmod(&copy, folders);
            chmod(&copy.join("projects"), folders);
            let checked = std::thread::spawn({
                let copy = copy.clone();
                move || {
                    if root {
                        // SAFETY: setfsuid(2) changes this thread's file
                        // system identity only; the thread ends here.
                        unsafe { libc::setfsuid(65534) };
                        assert!(
                            std::fs::OpenOptions::new()
                                .write(true)
                                .open(copy.join("server.sqlite"))
                                .is_err(),
                            "the test runs without write access"
                        );
                    }
                    AppService::open(&copy).and_then(|data| data.check_ready())
                }
            })
            .join()
            .unwrap();
            chmod(&copy, 0o755);
            chmod(&copy.join("projects"), 0o755);
            let Err(ServerError::NotWritable { path, .. }) = &checked else {
                panic!("{name}: {checked:?}")
            };
            let expected = if name == "folder" {
                copy.clone()
            } else {
                copy.join("server.sqlite")
            };
            assert_eq!(path, &expected, "{name}");
            assert!(
                checked
                    .unwrap_err()
                    .to_string()
                    .contains("is not writable by this process")
            );
        }
        drop(data);
    }

    #[test]
    fn pages_get_cached_indicators_at_once_and_fresh_ones_soon_after() {
        let dir = tempfile::tempdir().unwrap();
        let data = AppService::open(dir.path()).unwrap();
        data.first_start(now_ms()).unwrap();
        let project = data.accounts.project(FIRST_PROJECT).unwrap();
        let (first, head) = data.indicators_for_page(&project).unwrap();
        assert_eq!(first.head, head, "nothing cached: computed now");
        // A change: the page gets the cached figures and learns they are stale.
        let log = data.store(&project).unwrap();
        write_trader(&data, &project, mpaka_core::sample::trader(1));
        let (stale, head) = data.indicators_for_page(&project).unwrap();
        assert!(head > stale.head);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (now, head) = data.indicators_for_page(&project).unwrap();
            if now.head == head {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "recomputed in the background");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Exports and the API always get current figures.
        assert_eq!(data.indicators(&project).unwrap().head, log.head().unwrap());
    }

    #[test]
    fn a_group_judged_distinct_people_is_listed_again_only_when_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let data = AppService::open(dir.path()).unwrap();
        data.first_start(now_ms()).unwrap();
        let project = data.accounts.project(FIRST_PROJECT).unwrap();
        let log = data.store(&project).unwrap();
        let family_phone = |name: &str| {
            let mut f = mpaka_core::sample::trader(3);
            f.insert("full_name".into(), serde_json::json!(name));
            f.insert("phone".into(), serde_json::json!("+250 788 555 020"));
            (Collection::Traders, EntityId::random(), f)
        };
        data.author
            .write(
                log.as_ref(),
                vec![family_phone("Mukamana Eliane"), family_phone("Uwase Diane")],
                now_ms(),
            )
            .unwrap();
        let groups = data.duplicates(&project).unwrap();
        assert_eq!(groups.len(), 1);
        assert!(matches!(
            data.set_distinct(&project, "not-a-listed-group", 1),
            Err(ServerError::Review(ReviewError::NoSuchGroup))
        ));
        data.set_distinct(&project, &groups[0].key, 1).unwrap();
        assert!(data.duplicates(&project).unwrap().is_empty());
        // A third record on that phone: a new group, listed.
        data.author
            .write(log.as_ref(), vec![family_phone("Uwase Aline")], now_ms())
            .unwrap();
        assert_eq!(data.duplicates(&project).unwrap()[0].traders.len(), 3);
    }
}
