//! `dermdesk-hub`: runs the reference hub (`serve`), optionally seeded with the synthetic demo,
//! and changes a hub database directly (`admin`), as a GP practice or the service would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use dermdesk_hub::{app, serve, FaultConfig, FaultState, Hub, HubError, ServerConfig};
use dermdesk_synth::{DemoExtras, PhotoScale};
use tracing_subscriber::EnvFilter;

/// Long edge, in pixels, of photos at `--demo-scale small`: quick to generate, still zoomable.
const DEMO_SMALL_EDGE: u32 = 1024;
/// Read when `--admin-token` is not given, so the token need not appear in the process list.
const ADMIN_TOKEN_ENV: &str = "DERMDESK_HUB_ADMIN_TOKEN";

#[derive(Debug, Parser)]
#[command(name = "dermdesk-hub", version, about = "Derm Desk reference hub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the hub's HTTP API until Ctrl-C.
    Serve(ServeArgs),
    /// Change a hub database directly; safe while a server is using the same file.
    Admin(AdminArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8787")]
    addr: SocketAddr,
    /// Database file (created if missing). Without it the hub keeps everything in memory.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Photo directory. Default: beside the database (`<db>.photos`), or a temporary directory
    /// removed at exit when there is no database file.
    #[arg(long)]
    photos: Option<PathBuf>,
    /// Seed the synthetic demo set and print the demo consultant's enrolment code.
    #[arg(long)]
    demo: bool,
    /// Photo size for --demo: `full` (camera-sized, slow the first time) or `small`.
    #[arg(long, value_enum, default_value_t = DemoScale::Full)]
    demo_scale: DemoScale,
    /// With --demo: add a test referral of eight orientation charts (EXIF orientation 1 to 8,
    /// all upright when shown right), for checking the viewer.
    #[arg(long, requires = "demo")]
    demo_orientation_chart: bool,
    /// With --demo: add a test referral of four 24-megapixel photos (rendered once, cached),
    /// for measuring the viewer's memory when comparing them.
    #[arg(long, requires = "demo")]
    demo_large_photos: bool,
    /// Enables /admin routes for this bearer token (or set DERMDESK_HUB_ADMIN_TOKEN).
    #[arg(long)]
    admin_token: Option<String>,
    /// Test only: inject faults into /v1/feed, /v1/photos and /v1/outcomes, e.g.
    /// "5xx=0.05,429=0.05,latency=0.2,latency-ms=200,timeout=0.01,timeout-ms=3000,reset=0.02,
    /// truncate=0.05,flip=0.05,wrong-length=0.02,seed=7" (see docs/api.md).
    #[arg(long, value_name = "SPEC")]
    faults: Option<FaultConfig>,
    /// Serve this directory of Derm Desk updates at /updates/{file}: `latest.json` and the
    /// signed installers it names (made by `cargo xtask sign-update`; docs/api.md).
    #[arg(long, value_name = "DIR")]
    updates: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DemoScale {
    Full,
    Small,
}

#[derive(Debug, clap::Args)]
struct AdminArgs {
    /// The hub's database file.
    #[arg(long)]
    db: PathBuf,
    /// Photo directory (default `<db>.photos`); none of these actions touches photos.
    #[arg(long)]
    photos: Option<PathBuf>,
    #[command(subcommand)]
    action: AdminAction,
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Create a consultant and print its id.
    CreateConsultant { display_name: String },
    /// Issue a one-time enrolment code for a consultant.
    EnrolmentCode { consultant_id: String },
    /// Withdraw a referral (the GP practice no longer needs an answer).
    Withdraw { referral_id: String },
    /// Reassign an open referral to another consultant.
    Reassign { referral_id: String, consultant_id: String },
    /// Revoke a device: its token stops working at once.
    RevokeDevice { device_id: String },
    /// Print the hub's public receipt key as JSON (`{"key_id": .., "public_key": ..}`), for
    /// verifying receipts (docs/VERIFY.md).
    HubKey,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files or CI output.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => run_serve(args),
        Command::Admin(args) => run_admin(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dermdesk-hub: {message}");
            ExitCode::FAILURE
        }
    }
}

fn default_photo_dir(db: &Path) -> PathBuf {
    db.with_extension("photos")
}

/// Removes a temporary photo directory when the server stops, however it stops.
struct TemporaryDir(PathBuf);

impl Drop for TemporaryDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The reference hub runs on the computer's clock, or from `DERMDESK_NOW` (RFC 3339) on: the
/// end-to-end tests run the hub and the app at the same chosen instant.
fn clock_from_environment() -> Result<dermdesk_hub::HubClock, String> {
    match std::env::var("DERMDESK_NOW") {
        Ok(text) if !text.trim().is_empty() => {
            let start = chrono::DateTime::parse_from_rfc3339(text.trim())
                .map_err(|error| format!("DERMDESK_NOW={text:?} is not an RFC 3339 instant ({error})"))?;
            Ok(dermdesk_hub::clock_starting_at(start.with_timezone(&chrono::Utc)))
        }
        _ => Ok(Arc::new(chrono::Utc::now)),
    }
}

fn run_serve(args: ServeArgs) -> Result<(), String> {
    let (photo_dir, _temporary) = match (&args.photos, &args.db) {
        (Some(photos), _) => (photos.clone(), None),
        (None, Some(db)) => (default_photo_dir(db), None),
        (None, None) => {
            let dir = std::env::temp_dir().join(format!("dermdesk-hub-photos-{}", std::process::id()));
            (dir.clone(), Some(TemporaryDir(dir)))
        }
    };
    let hub = Hub::open_with_clock(args.db.as_deref(), &photo_dir, clock_from_environment()?)
        .map_err(|error| format!("cannot open the hub: {error}"))?;
    let admin_token =
        args.admin_token.or_else(|| std::env::var(ADMIN_TOKEN_ENV).ok()).filter(|token| !token.is_empty());
    let admin_enabled = admin_token.is_some();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|error| format!("cannot listen on {}: {error}", args.addr))?;
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        // Bound before seeding, so a busy port fails at once rather than after minutes of photo
        // generation; connections made meanwhile wait in the backlog until serving starts.
        let demo_seed = if args.demo {
            let hub = hub.clone();
            let scale = args.demo_scale;
            let extras = DemoExtras {
                orientation_chart: args.demo_orientation_chart,
                large_photos: args.demo_large_photos,
            };
            let seed = tokio::task::spawn_blocking(move || seed_demo(&hub, scale, extras))
                .await
                .map_err(|_| "seeding the demo panicked".to_string())??;
            Some(seed)
        } else {
            None
        };

        // The banner goes out in one write whose failure is ignored: a server must not die
        // because whoever started it stopped reading its stdout (a closed pipe made `println!`
        // panic after the enrolment code was read, and the hub was gone mid-test).
        let mut banner = format!("Derm Desk hub listening on http://{address}\n");
        if admin_enabled {
            banner += &format!("Admin routes enabled under http://{address}/admin/\n");
        }
        if args.faults.as_ref().is_some_and(FaultConfig::is_active) {
            banner +=
                "Fault injection is ON (test only): /v1/feed, /v1/photos and /v1/outcomes will misbehave\n";
        }
        if let Some(dir) = &args.updates {
            banner += &format!("Updates served from {} at http://{address}/updates/\n", dir.display());
        }
        if let Some(seed) = demo_seed {
            banner +=
                &format!("Demo consultant: {} ({})\n", seed.consultant.display_name, seed.consultant.id);
            banner += &format!(
                "Other consultant: {} ({})\n",
                seed.other_consultant.display_name, seed.other_consultant.id
            );
            banner += &format!("Enrolment code: {}\n", seed.enrolment_code);
        }
        {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
        }
        let faults = args.faults.map(|config| Arc::new(FaultState::new(config)));
        let router = app(hub, ServerConfig { admin_token, faults, updates: args.updates });
        serve(listener, router, shutdown_signal()).await.map_err(|error| format!("server failed: {error}"))
    })
}

fn seed_demo(hub: &Hub, scale: DemoScale, extras: DemoExtras) -> Result<dermdesk_hub::DemoSeed, String> {
    let cache_dir = demo_cache_dir();
    let photo_scale = match scale {
        DemoScale::Full => PhotoScale::Full,
        DemoScale::Small => PhotoScale::Small(DEMO_SMALL_EDGE),
    };
    eprintln!("Building the demo set in {} (the first run generates photos)...", cache_dir.display());
    hub.seed_synthetic_demo_with(&cache_dir, photo_scale, extras)
        .map_err(|error| format!("cannot build or seed the demo set in {}: {error}", cache_dir.display()))
}

/// `$DERMDESK_DEMO_PHOTO_CACHE` (the end-to-end tests share one), else
/// `$XDG_CACHE_HOME/dermdesk/demo`, else `~/.cache/dermdesk/demo`, else under the temp dir.
fn demo_cache_dir() -> PathBuf {
    let non_empty = |name| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(shared) = non_empty("DERMDESK_DEMO_PHOTO_CACHE") {
        return shared;
    }
    non_empty("XDG_CACHE_HOME")
        .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("dermdesk")
        .join("demo")
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    eprintln!("Stopping: finishing requests in flight.");
}

fn run_admin(args: AdminArgs) -> Result<(), String> {
    let photo_dir = args.photos.unwrap_or_else(|| default_photo_dir(&args.db));
    let hub =
        Hub::open(Some(&args.db), &photo_dir).map_err(|error| format!("cannot open the hub: {error}"))?;
    let done = |result: Result<(), HubError>| result.map_err(|error| error.to_string());
    match args.action {
        AdminAction::CreateConsultant { display_name } => {
            let consultant = hub.create_consultant(&display_name).map_err(|error| error.to_string())?;
            println!("{}", consultant.id);
            Ok(())
        }
        AdminAction::EnrolmentCode { consultant_id } => {
            println!("{}", hub.create_enrolment_code(&consultant_id).map_err(|error| error.to_string())?);
            Ok(())
        }
        AdminAction::Withdraw { referral_id } => done(hub.withdraw_referral(&referral_id)),
        AdminAction::Reassign { referral_id, consultant_id } => {
            done(hub.reassign_referral(&referral_id, &consultant_id))
        }
        AdminAction::RevokeDevice { device_id } => done(hub.revoke_device(&device_id)),
        AdminAction::HubKey => {
            println!("{}", serde_json::to_string(&hub.hub_key()).map_err(|error| error.to_string())?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(faults: &str) -> Result<ServeArgs, clap::Error> {
        match Cli::try_parse_from(["dermdesk-hub", "serve", "--faults", faults])?.command {
            Command::Serve(args) => Ok(args),
            Command::Admin(_) => panic!("parsed as admin"),
        }
    }

    #[test]
    fn serve_takes_a_faults_spec() {
        let args = serve_args("5xx=0.05,latency=0.2,latency-ms=200,seed=7").unwrap();
        let faults = args.faults.unwrap();
        assert_eq!(faults.error_5xx, 0.05);
        assert_eq!(faults.latency, 0.2);
        assert_eq!(faults.seed, Some(7));
    }

    #[test]
    fn serve_refuses_a_bad_faults_spec_with_the_reason() {
        let error = serve_args("5xx=0.05,jitter=3").unwrap_err().to_string();
        assert!(error.contains("unknown fault \"jitter\""), "{error}");
        let error = serve_args("reset=2").unwrap_err().to_string();
        assert!(error.contains("reset must be a probability from 0 to 1"), "{error}");
    }
}
