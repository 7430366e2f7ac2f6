//! `mpaka`: the command M&E officers and developers run.
//!
//! `mpaka serve` runs the sync server, `mpaka admin` administers it,
//! `mpaka simulate` plays a field day of devices against it, `mpaka export`
//! writes a project's merged data as files; `mpaka demo`
//! shows the offline store alone, `mpaka inspect` reads a store file and
//! `mpaka form` checks XLSForms.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mpaka_server::server::{AppService, Limits, shutdown_signal};

mod commands;

use commands::{admin, demo, export, form, inspect};

#[derive(Parser)]
#[command(name = "mpaka", version, about = "Offline-first surveys of cross-border traders")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server keeps its data.
#[derive(clap::Args, Clone)]
struct StorageArgs {
    /// Data folder of the embedded database (created if missing).
    #[arg(long, env = "MPAKA_DATA_DIR", default_value = "mpaka-data", global = true)]
    data_dir: PathBuf,
    /// PostgreSQL instead of the data folder, e.g.
    /// postgres://mpaka@db.example.org/mpaka (the schema is created or
    /// upgraded at start). A URL with a password is refused here, where
    /// every local user can read it with `ps`: pass it in
    /// MPAKA_DATABASE_URL or --database-url-file instead.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// A file holding the PostgreSQL URL (password included) on its first
    /// line, e.g. readable by the server's user only.
    #[arg(
        long,
        env = "MPAKA_DATABASE_URL_FILE",
        global = true,
        conflicts_with = "database_url"
    )]
    database_url_file: Option<PathBuf>,
    /// Pooled PostgreSQL connections per process.
    #[arg(long, env = "MPAKA_DATABASE_CONNECTIONS", default_value_t = 16, global = true)]
    database_connections: u32,
}

/// A PostgreSQL URL that cannot be used as given.
#[derive(Debug, thiserror::Error)]
enum DatabaseUrlError {
    /// A password on the command line.
    #[error(
        "--database-url holds a password, which every user of this machine can read in the process list: \
         pass the URL in MPAKA_DATABASE_URL, or in a file readable by the server's user only \
         (--database-url-file or MPAKA_DATABASE_URL_FILE), and leave --database-url out"
    )]
    PasswordOnCommandLine,
    /// Two sources at once.
    #[error("both MPAKA_DATABASE_URL and a URL file are given: use one of them")]
    TwoSources,
    /// The URL file does not read.
    #[error("database URL file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The URL file is empty.
    #[error("database URL file {0} is empty: write the postgres://… URL on its first line")]
    EmptyFile(PathBuf),
}

/// Whether a PostgreSQL URL (or key=value string) carries a password.
fn has_password(url: &str) -> bool {
    match url.parse::<postgres::Config>() {
        Ok(config) => config.get_password().is_some(),
        // Unparsable: look for the places a password would be.
        Err(_) => {
            let authority = url.split_once("://").map_or("", |(_, rest)| rest);
            let userinfo = authority.split_once('@').map_or("", |(userinfo, _)| userinfo);
            userinfo.contains(':') || url.contains("password")
        }
    }
}

impl StorageArgs {
    /// The PostgreSQL URL, if any: `--database-url` (without a password),
    /// or the file, or `MPAKA_DATABASE_URL`.
    fn database_url(&self) -> Result<Option<String>, DatabaseUrlError> {
        let from_env = std::env::var("MPAKA_DATABASE_URL").ok().filter(|u| !u.is_empty());
        if let Some(url) = &self.database_url {
            if has_password(url) {
                return Err(DatabaseUrlError::PasswordOnCommandLine);
            }
            return Ok(Some(url.clone()));
        }
        let Some(path) = &self.database_url_file else {
            return Ok(from_env);
        };
        if from_env.is_some() {
            return Err(DatabaseUrlError::TwoSources);
        }
        let text = std::fs::read_to_string(path).map_err(|source| DatabaseUrlError::File {
            path: path.clone(),
            source,
        })?;
        match text.lines().next().map(str::trim).filter(|l| !l.is_empty()) {
            Some(url) => Ok(Some(url.to_owned())),
            None => Err(DatabaseUrlError::EmptyFile(path.clone())),
        }
    }

    fn open(&self) -> Result<AppService, Box<dyn std::error::Error>> {
        Ok(match self.database_url()? {
            Some(url) => AppService::connect(&url, self.database_connections)?,
            None => AppService::open_with_key(&self.data_dir, mpaka_server::server::store_key_from_env()?)?,
        })
    }

    /// Where the data is, for people (never the URL: it may hold a password).
    fn describe(&self) -> String {
        match self.database_url() {
            Ok(Some(_)) => "data in PostgreSQL".into(),
            _ => format!("data in {}", self.data_dir.display()),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the sync server: on the embedded database (a data folder) by
    /// default, or on PostgreSQL with --database-url, where any number of
    /// server processes can share one database.
    Serve {
        /// Address to listen on (port 0: any free port, printed at start).
        #[arg(long, env = "MPAKA_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        #[command(flatten)]
        storage: StorageArgs,
        /// Requests per device per minute.
        #[arg(long, env = "MPAKA_REQUESTS_PER_MINUTE", default_value_t = Limits::default().requests_per_minute)]
        requests_per_minute: u32,
        /// Largest request body on the wire, in bytes.
        #[arg(long, env = "MPAKA_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
        max_body_bytes: usize,
        /// Connections served at once from one client address. Behind a
        /// load balancer or reverse proxy every phone has the proxy's
        /// address: raise it to the connection cap (4096) there.
        #[arg(long, env = "MPAKA_MAX_CONNECTIONS_PER_ADDRESS",
              default_value_t = Limits::default().max_connections_per_address)]
        max_connections_per_address: usize,
    },
    /// A field day, simulated: devices with real stores work offline with
    /// overlapping edits and wrong clocks, sync through unreliable links,
    /// and are compared with the server afterwards.
    Simulate {
        /// Devices (every fifth an M&E officer's).
        #[arg(long, default_value_t = 10)]
        devices: usize,
        /// Working days.
        #[arg(long, default_value_t = 2)]
        days: u32,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Server to sync with; repeat to spread devices across servers.
        /// Without it, an in-process server on a temporary folder.
        #[arg(long = "server")]
        servers: Vec<String>,
        /// Admin token of the server(s).
        #[arg(long, env = "MPAKA_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Actions per device per day.
        #[arg(long, default_value_t = 20)]
        actions: usize,
        /// Sync over reliable links (default: links that cut, delay and duplicate).
        #[arg(long)]
        reliable: bool,
        /// Devices syncing at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Administer the server's data folder: projects, users, devices, forms.
    Admin {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Export a project's merged data: a table per form (and per repeat
    /// group), traders, sessions, attendance, conflicts, review flags and
    /// the indicators, as CSV, XLSX or JSON lines.
    Export {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        args: export::ExportArgs,
    },
    /// Two enumerators' phones work offline at Rusizi II, then merge:
    /// surveys, an awareness session counted once, and a conflict resolved.
    Demo {
        /// Folder for the two phones' store files (replaced if present).
        #[arg(long, env = "MPAKA_DEMO_DIR", default_value = "mpaka-demo")]
        dir: PathBuf,
    },
    /// Counts, pending ops and open conflicts of a store file.
    Inspect {
        /// The store file.
        store: PathBuf,
    },
    /// Work with XLSForm questionnaires.
    #[command(subcommand)]
    Form(FormCommand),
}

#[derive(Subcommand)]
enum FormCommand {
    /// Compile an XLSForm (.xlsx, .xls, or pyxform's .csv or .md): print the compiled definition as
    /// JSON, or every mistake found, one per line, with sheet, row and column.
    Check {
        /// The XLSForm file.
        file: PathBuf,
    },
    /// Fill the form with answers (a JSON object of question name to value)
    /// and print {valid, errors, cleared, values, relevant}; exit 0 when valid.
    Validate {
        /// The XLSForm file.
        file: PathBuf,
        /// The answers, as JSON.
        answers: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            addr,
            storage,
            requests_per_minute,
            max_body_bytes,
            max_connections_per_address,
        } => {
            let limits = Limits {
                requests_per_minute,
                max_body_bytes,
                max_connections_per_address,
                ..Limits::default()
            };
            return serve(addr, &storage, limits);
        }
        Command::Simulate {
            devices,
            days,
            seed,
            servers,
            admin_token,
            actions,
            reliable,
            concurrency,
        } => {
            let config = mpaka_simulator::SimConfig {
                devices,
                days,
                seed,
                servers,
                admin_token,
                actions_per_day: actions,
                unreliable: !reliable,
                concurrency,
                ..Default::default()
            };
            return match mpaka_simulator::run(&config) {
                Ok(report) => {
                    println!("{report}");
                    if report.converged() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(error) => {
                    eprintln!("mpaka: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Admin { storage, command } => storage
            .open()
            .and_then(|data| admin::run(&data, command))
            .map(|out| print!("{out}")),
        Command::Export { storage, args } => storage
            .open()
            .and_then(|data| export::run(&data, args))
            .map(|out| print!("{out}")),
        Command::Demo { dir } => match demo::run(&dir) {
            Ok(summary) => {
                print!("{summary}");
                Ok(())
            }
            Err(error) => {
                eprintln!("mpaka: {error}");
                return ExitCode::FAILURE;
            }
        },
        Command::Inspect { store } => inspect::run(&store)
            .map(|report| print!("{report}"))
            .map_err(Into::into),
        Command::Form(FormCommand::Check { file }) => return form::check(&file),
        Command::Form(FormCommand::Validate { file, answers }) => return form::validate(&file, &answers),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mpaka: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: SocketAddr, storage: &StorageArgs, limits: Limits) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let data = storage.open()?;
        // Refuse now what would otherwise be 500s that devices retry.
        data.check_ready()?;
        // Bind before first start: when the port is taken, nothing is
        // created, and the next start shows the admin token. Both happen
        // before the runtime starts: first start is blocking database work
        // (PostgreSQL's client may not block inside the runtime).
        let bind = |source| mpaka_server::server::ServerError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let first = data.first_start(mpaka_server::server::now_ms())?;
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(bind)?;
            let local = listener.local_addr()?;
            println!("mpaka {} serving on http://{local} ({})", env!("CARGO_PKG_VERSION"), storage.describe());
            if let Some(first) = first {
                println!(
                    "\nFirst start: created project `{project}` with the trader survey and the session \
                     attendance form, and the server-wide user `admin`.\n\
                     Admin API token (shown once; keep it secret; `mpaka admin token admin` issues another):\n\n    {token}\n\n\
                     Enroll a phone:\n    \
                     mpaka admin add-user amina --role enumerator --project {project}\n    \
                     mpaka admin enroll amina --project {project} --server-url http://{local}\n\
                     then type the code (or scan the QR text) in the app. Over HTTP, with the token:\n    \
                     curl -H 'Authorization: Bearer <token>' http://{local}/v1/projects\n\
                     The dashboard, for admins and M&E officers: set a password with\n    \
                     mpaka admin set-password admin\n\
                     then open http://{local}/\n",
                    project = first.project.slug,
                    token = first.token.expose(),
                );
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let data = Arc::new(data);
            // Count the indicators now, so the first dashboard visit does not
            // wait on a scan of the whole project.
            let warm = data.clone();
            std::thread::spawn(move || warm.warm_indicators());
            mpaka_server::server::serve(data, limits, listener, shutdown_signal()).await?;
            Ok::<(), Box<dyn std::error::Error>>(())
        })
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mpaka: {error}");
            ExitCode::FAILURE
        }
    }
}
