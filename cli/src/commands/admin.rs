//! `mpaka admin`: the same administration as the API, on the data folder
//! directly (safe while the server runs: SQLite serializes writers).

use std::path::PathBuf;

use clap::Subcommand;
use mpaka_server::accounts::Role;
use mpaka_server::server::{AppService, enrollment_qr_text, now_ms};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a project.
    CreateProject {
        /// Short name for URLs and files (lowercase, digits, `.` `_` `-`).
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
    },
    /// Add a user to a project (admins are server-wide).
    AddUser {
        /// User name.
        username: String,
        /// admin, me_officer or enumerator.
        #[arg(long)]
        role: Role,
        /// The project (not needed for an admin).
        #[arg(long)]
        project: Option<String>,
    },
    /// Issue a one-time enrollment code for a user's device (valid 3 days).
    Enroll {
        /// The user.
        username: String,
        /// The project.
        #[arg(long)]
        project: String,
        /// The address devices reach the server at, for the QR text.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server_url: String,
    },
    /// List a project's devices.
    Devices {
        /// The project.
        #[arg(long)]
        project: String,
    },
    /// Revoke a device: its token stops working at once.
    Revoke {
        /// The device id (from `mpaka admin devices`).
        device: i64,
        /// The project.
        #[arg(long)]
        project: String,
    },
    /// Publish an XLSForm (.xlsx, .xls, or pyxform's .csv or .md) in a project.
    Publish {
        /// The XLSForm file.
        file: PathBuf,
        /// The project.
        #[arg(long)]
        project: String,
    },
    /// Set a user's dashboard password (admins and M&E officers log in at
    /// the server's address). Read from MPAKA_PASSWORD if set, else from
    /// the first line of standard input; never from the command line,
    /// where other users of the machine could read it.
    SetPassword {
        /// The user.
        username: String,
        /// The project (not needed for an admin).
        #[arg(long)]
        project: Option<String>,
    },
    /// Issue an API token for a user (shown once).
    Token {
        /// The user.
        username: String,
        /// The project (not needed for an admin).
        #[arg(long)]
        project: Option<String>,
    },
}

pub fn run(data: &AppService, command: AdminCommand) -> Result<String, Box<dyn std::error::Error>> {
    let now = now_ms() as i64;
    let accounts = &data.accounts;
    Ok(match command {
        AdminCommand::CreateProject { slug, name } => {
            accounts.create_project(&slug, &name, now)?;
            format!("created project `{slug}`\n")
        }
        AdminCommand::AddUser {
            username,
            role,
            project,
        } => {
            let project = project.map(|p| accounts.project(&p)).transpose()?;
            accounts.add_user(project.as_ref(), &username, role, now)?;
            format!("added {} `{username}`\n", role.as_str())
        }
        AdminCommand::Enroll {
            username,
            project,
            server_url,
        } => {
            let project = accounts.project(&project)?;
            let (admin, _) = accounts.user(None, "admin").unwrap_or((0, Role::Admin));
            let (code, expires) = accounts.issue_enrollment(&project, &username, (admin, Role::Admin), now)?;
            let expires = chrono::DateTime::from_timestamp_millis(expires).unwrap_or_default();
            format!(
                "enrollment code for `{username}` in `{}` (one use, until {} UTC):\n\n    {}\n\nQR text: {}\n",
                project.slug,
                expires.format("%Y-%m-%d %H:%M"),
                code.expose(),
                enrollment_qr_text(&server_url, code.expose())
            )
        }
        AdminCommand::Devices { project } => {
            let project = accounts.project(&project)?;
            let mut out =
                String::from("id\tuser\trole\tname\tlast sync\tops received\trejected\tclock off by\trevoked\n");
            for d in accounts.devices(&project)? {
                let when = |ms: Option<i64>| {
                    ms.and_then(chrono::DateTime::from_timestamp_millis)
                        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
                };
                out += &format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    d.id,
                    d.username,
                    d.role.as_str(),
                    d.name,
                    when(d.last_sync_at),
                    d.ops_received,
                    d.ops_rejected,
                    d.clock_error(),
                    when(d.revoked_at)
                );
            }
            out
        }
        AdminCommand::Revoke { device, project } => {
            accounts.revoke_device(&accounts.project(&project)?, device, now)?;
            format!("revoked device {device}\n")
        }
        AdminCommand::Publish { file, project } => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let name = file.file_name().and_then(|n| n.to_str());
            let form = data.publish_form(&accounts.project(&project)?, &bytes, name, now as u64)?;
            format!(
                "published `{}` version `{}` ({})\n",
                form.form_id, form.version, form.title
            )
        }
        AdminCommand::SetPassword { username, project } => {
            let password = match std::env::var("MPAKA_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let project = project.map(|p| accounts.project(&p)).transpose()?;
            accounts.set_password(project.as_ref(), &username, &password)?;
            format!("password set for `{username}`\n")
        }
        AdminCommand::Token { username, project } => {
            let project = project.map(|p| accounts.project(&p)).transpose()?;
            let token = accounts.issue_api_token(project.as_ref(), &username, now)?;
            format!(
                "API token for `{username}` (shown once; keep it secret):\n\n    {}\n",
                token.expose()
            )
        }
    })
}
