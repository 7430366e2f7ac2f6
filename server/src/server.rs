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
use mpaka_core::{EntityId, NodeId, Op, Store, StoreOptions};

use crate::accounts::{AccountError, Accounts, Project, Role, Secret};
use crate::exchange::ExchangeLimits;
use crate::export::{ExportContext, ExportOptions};
use crate::indicators::Indicators;
use crate::review::{Author, Keep, ReviewError};
use crate::storage::postgres::Postgres;
use crate::storage::{ProjectLog, StorageError};

/// The project first start creates.
pub const FIRST_PROJECT: &str = "rusizi-bukavu";

/// Something the server cannot do or start with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data folder cannot be used.
    #[error("data folder {path}: {source}")]
    DataDir {
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
    /// Failed enrollment attempts per client address per minute.
    pub enroll_failures_per_minute: u32,
    /// Per-exchange limits.
    pub exchange: ExchangeLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 48 << 20,
            requests_per_minute: 300,
            enroll_failures_per_minute: 10,
            exchange: ExchangeLimits::default(),
        }
    }
}

/// The server's data: accounts and the project logs.
#[derive(Debug)]
pub struct DataDir {
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
    },
    /// All in one PostgreSQL database.
    Postgres(Postgres),
}

impl DataDir {
    /// Opens (creating if needed) the data folder: SQLite files.
    pub fn open(dir: &Path) -> Result<DataDir, ServerError> {
        let io = |source| ServerError::DataDir {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir.join("projects")).map_err(io)?;
        let accounts = Accounts::open(&dir.join("server.sqlite"))?;
        Ok(DataDir {
            accounts,
            projects: Projects::Files {
                dir: dir.to_owned(),
                open: Mutex::new(HashMap::new()),
            },
            author: Author::new(),
            indicators: Arc::default(),
            refreshing: Arc::default(),
        })
    }

    /// Connects to a PostgreSQL database (`postgres://…`) with up to
    /// `connections` pooled connections, bringing its schema up to date.
    pub fn connect(url: &str, connections: u32) -> Result<DataDir, ServerError> {
        let db = Postgres::connect(url, connections)?;
        Ok(DataDir {
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
            Projects::Files { dir, open } => {
                let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(store) = open.get(&project.id) {
                    return Ok(store.clone());
                }
                let path = dir.join("projects").join(format!("{}.mpaka", project.slug));
                let store = Arc::new(Store::open(&path, StoreOptions::default())?);
                open.insert(project.id, store.clone());
                Ok(store)
            }
            Projects::Postgres(db) => Ok(Arc::new(db.project(project.id))),
        }
    }

    /// Compiles an XLSForm (.xlsx bytes) and publishes it in `project`.
    /// Republishing identical content is a no-op; a changed form needs a
    /// new `settings.version`, so submissions of older versions stay valid
    /// against the version they were made with.
    pub fn publish_form(&self, project: &Project, xlsx: &[u8], now_ms: u64) -> Result<FormDefinition, ServerError> {
        let form = FormDefinition::from_xlsx(xlsx)
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
            self.publish_form(&project, form, now_ms)?;
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
/// accepting and finishes the requests in flight (a batch being ingested
/// completes and is acknowledged).
pub async fn serve(
    data: Arc<DataDir>,
    limits: Limits,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::http::router(data, limits);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
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
    use mpaka_core::{Collection, EntityId};

    use super::*;

    #[test]
    fn pages_get_cached_indicators_at_once_and_fresh_ones_soon_after() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        data.first_start(now_ms()).unwrap();
        let project = data.accounts.project(FIRST_PROJECT).unwrap();
        let (first, head) = data.indicators_for_page(&project).unwrap();
        assert_eq!(first.head, head, "nothing cached: computed now");
        // A change: the page gets the cached figures and learns they are stale.
        let log = data.store(&project).unwrap();
        let fields = mpaka_core::sample::trader(1);
        data.author
            .write(
                log.as_ref(),
                vec![(Collection::Traders, EntityId::random(), fields)],
                now_ms(),
            )
            .unwrap();
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
        let data = DataDir::open(dir.path()).unwrap();
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
