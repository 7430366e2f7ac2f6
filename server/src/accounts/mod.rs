//! Who may do what: projects, users and their roles, devices and their
//! tokens, enrollment codes. Kept in `server.sqlite` in the data folder, or
//! in PostgreSQL when several server processes share one database.
//!
//! Secrets are never stored: a device token is 256 random bits and only its
//! SHA-256 is kept (a token that random needs no slow hash); an enrollment
//! code is stored hashed too, used once, and expires.

mod password;
mod secret;

use std::path::Path;
use std::sync::Mutex;

use mpaka_core::NodeId;
use serde::{Deserialize, Serialize};

pub use self::secret::{Secret, hash_secret, new_enrollment_code, new_token, normalize_code};
use crate::sql::{Db, PgPool, Row, SqlError, params};

/// How long an enrollment code stays usable: three days, time for an
/// enumerator to reach the office or receive it by phone.
pub const ENROLLMENT_TTL_MS: i64 = 3 * 24 * 3600 * 1000;

/// How long a dashboard login lasts: a working day.
pub const WEB_SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// Shortest dashboard password.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the server: every project, publishing, users, devices.
    Admin,
    /// Monitoring and evaluation officer: reads and edits everything in
    /// their project, publishes forms, enrolls devices.
    MeOfficer,
    /// Field enumerator: the project's forms, registry and sessions, and
    /// their own interviews only.
    Enumerator,
}

impl Role {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::MeOfficer => "me_officer",
            Role::Enumerator => "enumerator",
        }
    }

    fn parse(text: &str) -> Result<Role, AccountError> {
        match text {
            "admin" => Ok(Role::Admin),
            "me_officer" => Ok(Role::MeOfficer),
            "enumerator" => Ok(Role::Enumerator),
            other => Err(AccountError::Invalid(format!(
                "unknown role `{other}` (admin, me_officer or enumerator)"
            ))),
        }
    }

    /// May manage the project's devices, forms and enrollments.
    pub fn manages(self) -> bool {
        matches!(self, Role::Admin | Role::MeOfficer)
    }
}

impl std::str::FromStr for Role {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Role, AccountError> {
        Role::parse(s)
    }
}

/// A project: one survey programme's data, forms and people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Internal id.
    #[serde(skip)]
    pub id: i64,
    /// Short name used in URLs and file names.
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// Who is calling: resolved from a token on every request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The device (or API client) the token belongs to.
    pub device_id: i64,
    /// Its user.
    pub user_id: i64,
    /// The user's name.
    pub username: String,
    /// The user's role.
    pub role: Role,
    /// The user's project; `None` for admins, who act on any project.
    pub project: Option<Project>,
    /// The replica's node id, for a device that syncs.
    pub node: Option<NodeId>,
}

impl Principal {
    /// May this principal act on `project` at all?
    pub fn in_project(&self, project: &Project) -> bool {
        self.role == Role::Admin || self.project.as_ref().is_some_and(|p| p.id == project.id)
    }
}

/// A device as the admin pages list it (no secret in it).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    /// Device id, for revoking.
    pub id: i64,
    /// Its user.
    pub username: String,
    /// Its user's role.
    pub role: Role,
    /// Name given at enrollment.
    pub name: String,
    /// Node id, if it syncs.
    pub node_id: Option<String>,
    /// Enrolled at (ms).
    pub enrolled_at: i64,
    /// Revoked at (ms), if revoked.
    pub revoked_at: Option<i64>,
    /// Last sync (ms).
    pub last_sync_at: Option<i64>,
    /// Ops received from it.
    pub ops_received: i64,
    /// Ops refused.
    pub ops_rejected: i64,
    /// Server time minus the device's clock at its last sync (ms), to
    /// within the request's one-way travel time: hours or years mean the
    /// phone's clock is wrong (its ops are corrected; its owner should fix it).
    pub clock_offset_ms: Option<i64>,
    /// Ops still waiting on the device after its last sync request, as it
    /// reported them.
    pub pending_ops: Option<i64>,
}

impl DeviceInfo {
    /// How far off the device's clock was at its last sync, for people:
    /// "ok" under a minute, else ahead or behind by the largest unit that
    /// fits; "-" if never measured.
    pub fn clock_error(&self) -> String {
        let Some(offset) = self.clock_offset_ms else {
            return "-".into();
        };
        // offset = server - device: positive means the device is behind.
        let (amount, direction) = (offset.unsigned_abs(), if offset > 0 { "behind" } else { "ahead" });
        let units = [
            (365 * 24 * 3600 * 1000, "y"),
            (24 * 3600 * 1000, "d"),
            (3600 * 1000, "h"),
            (60 * 1000, "min"),
        ];
        match units.iter().find(|(size, _)| amount >= *size) {
            Some((size, unit)) => format!("{} {unit} {direction}", amount / size),
            None => "ok".into(),
        }
    }
}

/// A submission flagged for review.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewFlag {
    /// The submission id.
    pub submission: String,
    /// Its form.
    pub form_id: String,
    /// Its form version.
    pub version: String,
    /// The rules it breaks.
    pub errors: serde_json::Value,
    /// When flagged (ms).
    pub flagged_at: i64,
}

/// A submission id and its flag (form_id, version, problems), or `None` to
/// clear it.
pub type FlagUpdate = (String, Option<(String, String, serde_json::Value)>);

/// An account operation that cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No such project.
    #[error("no project `{0}`")]
    UnknownProject(String),
    /// No such user.
    #[error("no user `{username}` in project `{project}`")]
    UnknownUser {
        /// The project.
        project: String,
        /// The user name.
        username: String,
    },
    /// Already exists.
    #[error("{0} already exists")]
    Exists(String),
    /// A project user may not take the name of a server-wide user (or
    /// `admin`): it would pass for the admin.
    #[error("the user name `{0}` is reserved for a server-wide user; choose another name for a project user")]
    Reserved(String),
    /// A bad name, role or argument.
    #[error("{0}")]
    Invalid(String),
    /// The enrollment code is unknown, used or expired (not told apart, so
    /// that guessing learns nothing).
    #[error("this enrollment code is not valid: it may be mistyped, already used or expired; ask for a new one")]
    BadCode,
    /// No such device in the project.
    #[error("no device {0} in this project")]
    UnknownDevice(i64),
    /// The database failed.
    #[error("accounts database: {0}")]
    Database(#[from] SqlError),
    /// Hashing a new password failed (the system's random source).
    #[error("cannot hash the password: {0}")]
    PasswordHash(argon2::password_hash::Error),
}

/// The accounts database: `server.sqlite` in the data folder, or tables in
/// the PostgreSQL database several server processes share. The queries
/// are the same for both (see `sql.rs`).
#[derive(Debug)]
pub struct Accounts {
    db: Db,
}

const PRINCIPAL_SELECT: &str = "SELECT d.id, u.id, u.username, u.role, p.id, p.slug, p.name, d.node_id \
     FROM devices d JOIN users u ON u.id = d.user_id LEFT JOIN projects p ON p.id = u.project_id";

impl Accounts {
    /// Opens (creating if needed) the SQLite accounts database at `path`.
    pub fn open(path: &Path) -> Result<Accounts, AccountError> {
        Accounts::on_sqlite(rusqlite::Connection::open(path).map_err(SqlError::from)?)
    }

    /// The accounts in SQLite connection `conn`, set up (schema created or
    /// upgraded): for a connection already given its SQLCipher key
    /// (`AppService::open_with_key`).
    pub fn on_sqlite(conn: rusqlite::Connection) -> Result<Accounts, AccountError> {
        let setup = || -> rusqlite::Result<()> {
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", true)?;
            conn.execute_batch(include_str!("schema.sql"))?;
            // Added after the first release: older files get the columns.
            for (table, column, kind) in [
                ("devices", "clock_offset_ms", "INTEGER"),
                ("users", "password_hash", "TEXT"),
                ("devices", "pending_ops", "INTEGER"),
            ] {
                let present: bool = conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
                    [table, column],
                    |r| r.get(0),
                )?;
                if !present {
                    // Names from the list above, never from input.
                    conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
                }
            }
            Ok(())
        };
        setup().map_err(SqlError::from)?;
        Ok(Accounts {
            db: Db::Sqlite(Mutex::new(conn)),
        })
    }

    /// The accounts in a PostgreSQL database whose schema
    /// [`Postgres::connect`](crate::storage::postgres::Postgres::connect)
    /// brought up to date.
    pub fn on_postgres(pool: PgPool) -> Accounts {
        Accounts { db: Db::Postgres(pool) }
    }

    /// Creates a project.
    pub fn create_project(&self, slug: &str, name: &str, now: i64) -> Result<Project, AccountError> {
        check_name("project slug", slug)?;
        let row = self.db.with(|db| {
            db.query_opt(
                "INSERT INTO projects (slug, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING RETURNING id",
                params![slug, name, now],
            )
        })?;
        let Some(row) = row else {
            return Err(AccountError::Exists(format!("project `{slug}`")));
        };
        Ok(Project {
            id: row.int(0)?,
            slug: slug.into(),
            name: name.into(),
        })
    }

    /// The project called `slug`.
    pub fn project(&self, slug: &str) -> Result<Project, AccountError> {
        self.db
            .with(|db| db.query_opt("SELECT id, slug, name FROM projects WHERE slug = ?1", params![slug]))?
            .map(|r| project_row(&r))
            .transpose()?
            .ok_or_else(|| AccountError::UnknownProject(slug.into()))
    }

    /// Every project.
    pub fn projects(&self) -> Result<Vec<Project>, AccountError> {
        let rows = self
            .db
            .with(|db| db.query("SELECT id, slug, name FROM projects ORDER BY slug", params![]))?;
        Ok(rows.iter().map(project_row).collect::<Result<_, _>>()?)
    }

    /// Adds a user: an admin is server-wide (`project` is ignored), others
    /// belong to `project`.
    pub fn add_user(
        &self,
        project: Option<&Project>,
        username: &str,
        role: Role,
        now: i64,
    ) -> Result<i64, AccountError> {
        check_name("user name", username)?;
        let project_id = match (role, project) {
            (Role::Admin, _) => 0,
            (_, Some(p)) => p.id,
            (_, None) => return Err(AccountError::Invalid(format!("a {} needs a project", role.as_str()))),
        };
        if project_id != 0 {
            self.check_not_server_wide(username)?;
        }
        let row = self.db.with(|db| {
            db.query_opt(
                "INSERT INTO users (project_id, username, role, created_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT DO NOTHING RETURNING id",
                params![project_id, username, role.as_str(), now],
            )
        })?;
        match row {
            Some(row) => Ok(row.int(0)?),
            None => Err(AccountError::Exists(format!("user `{username}`"))),
        }
    }

    /// Refuses a project user named `admin` or like any server-wide user:
    /// the name would pass for the admin in device lists, indicators and
    /// exports, and `mpaka admin token <name> --project …` or
    /// `set-password` would pick the project user instead. The one check
    /// for the API, the dashboard and the command line.
    fn check_not_server_wide(&self, username: &str) -> Result<(), AccountError> {
        let taken = username.eq_ignore_ascii_case(RESERVED_USER)
            || self
                .db
                .with(|db| {
                    db.query_opt(
                        "SELECT 1 FROM users WHERE project_id = 0 AND lower(username) = lower(?1)",
                        params![username],
                    )
                })?
                .is_some();
        if taken {
            return Err(AccountError::Reserved(username.to_owned()));
        }
        Ok(())
    }

    /// The id and role of a user of `project` (or an admin).
    pub fn user(&self, project: Option<&Project>, username: &str) -> Result<(i64, Role), AccountError> {
        let row = self.db.with(|db| {
            db.query_opt(
                "SELECT id, role FROM users WHERE username = ?1 AND project_id IN (0, ?2) \
                 ORDER BY project_id DESC LIMIT 1",
                params![username, project.map_or(0, |p| p.id)],
            )
        })?;
        let row = row.ok_or_else(|| AccountError::UnknownUser {
            project: project.map_or_else(|| "(server)".into(), |p| p.slug.clone()),
            username: username.into(),
        })?;
        Ok((row.int(0)?, Role::parse(&row.text(1)?)?))
    }

    /// Issues a one-time enrollment code for a user of `project`.
    pub fn issue_enrollment(
        &self,
        project: &Project,
        username: &str,
        issued_by: (i64, Role),
        now: i64,
    ) -> Result<(Secret, i64), AccountError> {
        let (issuer, issuer_role) = issued_by;
        let (user_id, role) = self.user(Some(project), username)?;
        if role == Role::Admin {
            return Err(AccountError::Invalid(
                "admins use API tokens (`mpaka admin token`), not enrolled devices".into(),
            ));
        }
        // A code acts as its user: officers may hand out codes for
        // enumerators only, as they may add only enumerators.
        if role != Role::Enumerator && issuer_role != Role::Admin {
            return Err(AccountError::Invalid(format!(
                "only an admin may issue a code for the {} `{username}`",
                role.as_str()
            )));
        }
        let code = new_enrollment_code();
        let expires_at = now + ENROLLMENT_TTL_MS;
        let hash = hash_secret(&normalize_code(code.expose()));
        self.db.with(|db| {
            db.execute(
                "INSERT INTO enrollments (code_hash, user_id, issued_by, issued_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&hash, user_id, issuer, now, expires_at],
            )
        })?;
        Ok((code, expires_at))
    }

    /// Exchanges an enrollment code for a device token, once. The code is
    /// claimed first, in the transaction, so that two devices racing with
    /// one code (on one server process or two) cannot both enroll.
    pub fn enroll(&self, code: &str, node: NodeId, name: &str, now: i64) -> Result<(Principal, Secret), AccountError> {
        let token = new_token();
        let token_hash = hash_secret(token.expose());
        let code_hash = hash_secret(&normalize_code(code));
        let name: String = name.chars().filter(|c| !c.is_control()).take(80).collect();
        self.db.transaction(|db| {
            let Some(claim) = db.query_opt(
                "UPDATE enrollments SET used_at = ?1 WHERE code_hash = ?2 AND used_at IS NULL AND expires_at > ?1 \
                 RETURNING user_id",
                params![now, &code_hash],
            )?
            else {
                return Err(AccountError::BadCode);
            };
            let user_id = claim.int(0)?;
            let project_id = db
                .query_opt("SELECT project_id FROM users WHERE id = ?1", params![user_id])?
                .map(|r| r.int(0))
                .transpose()?
                .unwrap_or(0);
            let taken = db.query_opt(
                "SELECT 1 FROM devices WHERE project_id = ?1 AND node_id = ?2",
                params![project_id, node.to_sql()],
            )?;
            if taken.is_some() {
                // Rolls the claim back: the code stays usable from a fresh store.
                return Err(AccountError::Exists(format!(
                    "a device with node id {node} (a copied store file? reinstall the app to get a fresh store)"
                )));
            }
            let device = db
                .query_opt(
                    "INSERT INTO devices (user_id, project_id, node_id, name, token_hash, enrolled_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                    params![user_id, project_id, node.to_sql(), &name, &token_hash, now],
                )?
                .map(|r| r.int(0))
                .transpose()?;
            db.execute(
                "UPDATE enrollments SET device_id = ?1 WHERE code_hash = ?2",
                params![device, &code_hash],
            )?;
            Ok(())
        })?;
        let principal = self.authenticate(token.expose())?.ok_or(AccountError::BadCode)?;
        Ok((principal, token))
    }

    /// Issues an API token (no node id: it cannot sync) for a user.
    pub fn issue_api_token(&self, project: Option<&Project>, username: &str, now: i64) -> Result<Secret, AccountError> {
        let (user_id, role) = self.user(project, username)?;
        let project_id = if role == Role::Admin {
            0
        } else {
            project.map_or(0, |p| p.id)
        };
        let token = new_token();
        let hash = hash_secret(token.expose());
        self.db.with(|db| {
            db.execute(
                "INSERT INTO devices (user_id, project_id, node_id, name, token_hash, enrolled_at) \
                 VALUES (?1, ?2, NULL, 'api token', ?3, ?4)",
                params![user_id, project_id, &hash, now],
            )
        })?;
        Ok(token)
    }

    /// The principal a token belongs to, unless unknown or revoked.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, AccountError> {
        let hash = hash_secret(token);
        let row = self.db.with(|db| {
            db.query_opt(
                &format!("{PRINCIPAL_SELECT} WHERE d.token_hash = ?1 AND d.revoked_at IS NULL"),
                params![&hash],
            )
        })?;
        row.map(|r| principal_row(&r)).transpose()
    }

    /// Revokes a device of `project`: its token stops working at once.
    pub fn revoke_device(&self, project: &Project, device_id: i64, now: i64) -> Result<(), AccountError> {
        let changed = self.db.with(|db| {
            db.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2 AND project_id = ?3",
                params![now, device_id, project.id],
            )
        })?;
        if changed == 0 {
            return Err(AccountError::UnknownDevice(device_id));
        }
        Ok(())
    }

    /// The devices of `project`.
    pub fn devices(&self, project: &Project) -> Result<Vec<DeviceInfo>, AccountError> {
        let rows = self.db.with(|db| {
            db.query(
                "SELECT d.id, u.username, u.role, d.name, d.node_id, d.enrolled_at, d.revoked_at, d.last_sync_at, \
                 d.ops_received, d.ops_rejected, d.clock_offset_ms, d.pending_ops FROM devices d JOIN users u ON u.id = d.user_id \
                 WHERE d.project_id = ?1 ORDER BY d.id",
                params![project.id],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(DeviceInfo {
                    id: r.int(0)?,
                    username: r.text(1)?,
                    role: Role::parse(&r.text(2)?)?,
                    name: r.text(3)?,
                    node_id: r.opt_int(4)?.map(|n| NodeId::from_sql(n).to_string()),
                    enrolled_at: r.int(5)?,
                    revoked_at: r.opt_int(6)?,
                    last_sync_at: r.opt_int(7)?,
                    ops_received: r.int(8)?,
                    ops_rejected: r.int(9)?,
                    clock_offset_ms: r.opt_int(10)?,
                    pending_ops: r.opt_int(11)?,
                })
            })
            .collect()
    }

    /// Records a sync of a device, its clock's offset if it sent its time,
    /// and the ops it said still wait on it (absent ones keep the last
    /// known).
    pub fn record_sync(
        &self,
        device_id: i64,
        received: u64,
        rejected: u64,
        clock_offset_ms: Option<i64>,
        pending_ops: Option<i64>,
        now: i64,
    ) -> Result<(), AccountError> {
        self.db.with(|db| {
            db.execute(
                "UPDATE devices SET last_sync_at = ?1, ops_received = ops_received + ?2, \
                 ops_rejected = ops_rejected + ?3, clock_offset_ms = coalesce(?5, clock_offset_ms), \
                 pending_ops = coalesce(?6, pending_ops) WHERE id = ?4",
                params![
                    now,
                    received as i64,
                    rejected as i64,
                    device_id,
                    clock_offset_ms,
                    pending_ops
                ],
            )
        })?;
        Ok(())
    }

    /// Flags submissions for review (replacing earlier flags), or clears
    /// the flag of those given `None`, in one transaction.
    pub fn set_review_flags(&self, project: &Project, flags: &[FlagUpdate], now: i64) -> Result<(), AccountError> {
        if flags.is_empty() {
            return Ok(());
        }
        self.db.transaction(|db| {
            for (submission, flag) in flags {
                match flag {
                    Some((form_id, version, errors)) => db.execute(
                        "INSERT INTO review_flags (project_id, entity, form_id, version, errors, flagged_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (project_id, entity) DO UPDATE SET \
                         form_id = excluded.form_id, version = excluded.version, errors = excluded.errors, \
                         flagged_at = excluded.flagged_at",
                        params![project.id, submission, form_id, version, &errors.to_string(), now],
                    )?,
                    None => db.execute(
                        "DELETE FROM review_flags WHERE project_id = ?1 AND entity = ?2",
                        params![project.id, submission],
                    )?,
                };
            }
            Ok::<(), AccountError>(())
        })?;
        Ok(())
    }

    /// Submissions of `project` flagged for review.
    pub fn review_flags(&self, project: &Project) -> Result<Vec<ReviewFlag>, AccountError> {
        let rows = self.db.with(|db| {
            db.query(
                "SELECT entity, form_id, version, errors, flagged_at FROM review_flags WHERE project_id = ?1 \
                 ORDER BY entity",
                params![project.id],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(ReviewFlag {
                    submission: r.text(0)?,
                    form_id: r.text(1)?,
                    version: r.text(2)?,
                    errors: serde_json::from_str(&r.text(3)?).unwrap_or(serde_json::Value::Null),
                    flagged_at: r.int(4)?,
                })
            })
            .collect()
    }

    /// Records that the trader records `traders` (a possible-duplicate
    /// group) are distinct people, so the group is not listed again.
    pub fn set_distinct_traders(
        &self,
        project: &Project,
        traders: &str,
        by: i64,
        now: i64,
    ) -> Result<(), AccountError> {
        self.db.with(|db| {
            db.execute(
                "INSERT INTO distinct_traders (project_id, traders, decided_by, decided_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (project_id, traders) DO NOTHING",
                params![project.id, traders, by, now],
            )
        })?;
        Ok(())
    }

    /// The possible-duplicate groups of `project` judged distinct people.
    pub fn distinct_traders(&self, project: &Project) -> Result<std::collections::HashSet<String>, AccountError> {
        let rows = self.db.with(|db| {
            db.query(
                "SELECT traders FROM distinct_traders WHERE project_id = ?1",
                params![project.id],
            )
        })?;
        rows.iter().map(|r| Ok(r.text(0)?)).collect()
    }

    /// Sets the dashboard password of a user of `project` (or an admin),
    /// stored as an argon2id hash, and ends the user's open sessions. At
    /// least 10 characters: the dashboard shows survey data about
    /// vulnerable people.
    pub fn set_password(&self, project: Option<&Project>, username: &str, password: &str) -> Result<(), AccountError> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AccountError::Invalid(format!(
                "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        let (user_id, _) = self.user(project, username)?;
        let hash = password::hash(password)?;
        // A new password ends every session opened with the old one.
        self.db.transaction(|db| {
            db.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![&hash, user_id],
            )?;
            db.execute("DELETE FROM web_sessions WHERE user_id = ?1", params![user_id])
        })?;
        Ok(())
    }

    /// Checks a dashboard login and opens a session: its cookie secret,
    /// shown once. `None` for an unknown user or a wrong password (not
    /// told apart). Enumerators have no dashboard.
    pub fn login(&self, username: &str, password: &str, now: i64) -> Result<Option<Secret>, AccountError> {
        let rows = self.db.with(|db| {
            db.query(
                "SELECT id, password_hash FROM users WHERE username = ?1 AND password_hash IS NOT NULL                  AND role IN ('admin', 'me_officer') ORDER BY id",
                params![username],
            )
        })?;
        let mut user = None;
        for row in &rows {
            if password::verify(password, &row.text(1)?) {
                user = Some(row.int(0)?);
                break;
            }
        }
        if rows.is_empty() {
            // As slow as a wrong password, so timing does not tell which
            // user names exist.
            password::verify(password, password::DUMMY_HASH);
        }
        let Some(user_id) = user else {
            return Ok(None);
        };
        let token = new_token();
        self.db.with(|db| {
            db.execute("DELETE FROM web_sessions WHERE expires_at < ?1", params![now])?;
            db.execute(
                "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![&hash_secret(token.expose()), user_id, now, now + WEB_SESSION_TTL_MS],
            )
        })?;
        Ok(Some(token))
    }

    /// The user a dashboard session cookie belongs to, unless unknown or
    /// expired. Its `device_id` is the negated user id (rate limits count
    /// per user; devices have positive ids).
    pub fn web_session(&self, token: &str, now: i64) -> Result<Option<Principal>, AccountError> {
        let row = self.db.with(|db| {
            db.query_opt(
                "SELECT -u.id, u.id, u.username, u.role, p.id, p.slug, p.name, NULL                  FROM web_sessions s JOIN users u ON u.id = s.user_id LEFT JOIN projects p ON p.id = u.project_id                  WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                params![&hash_secret(token), now],
            )
        })?;
        row.map(|r| principal_row(&r)).transpose()
    }

    /// Ends a dashboard session.
    pub fn logout(&self, token: &str) -> Result<(), AccountError> {
        self.db.with(|db| {
            db.execute(
                "DELETE FROM web_sessions WHERE token_hash = ?1",
                params![&hash_secret(token)],
            )
        })?;
        Ok(())
    }

    /// Whether any admin exists (first start creates one).
    pub fn has_admin(&self) -> Result<bool, AccountError> {
        let row = self
            .db
            .with(|db| db.query_opt("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1", params![]))?;
        Ok(row.is_some())
    }
}

fn project_row(r: &Row) -> Result<Project, SqlError> {
    Ok(Project {
        id: r.int(0)?,
        slug: r.text(1)?,
        name: r.text(2)?,
    })
}

fn principal_row(r: &Row) -> Result<Principal, AccountError> {
    let project = match r.opt_int(4)? {
        Some(id) => Some(Project {
            id,
            slug: r.text(5)?,
            name: r.text(6)?,
        }),
        None => None,
    };
    Ok(Principal {
        device_id: r.int(0)?,
        user_id: r.int(1)?,
        username: r.text(2)?,
        role: Role::parse(&r.text(3)?)?,
        project,
        node: r.opt_int(7)?.map(NodeId::from_sql),
    })
}

/// The name first start gives the server-wide admin: never a project
/// user's, even before that admin exists.
const RESERVED_USER: &str = "admin";

/// Slugs and user names: 1 to 64 of `a-z 0-9 . _ -`, starting with a
/// letter or digit (they appear in URLs, file names and exports).
fn check_name(what: &str, name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "the {what} `{}` is not valid: use 1 to 64 lowercase letters, digits, `.`, `_` or `-`, starting with a letter or digit",
            name.chars().take(64).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests;
