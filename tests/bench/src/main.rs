//! Derm Desk's benchmarks: performance measured side by side with plain references, not timed
//! tests. `cargo xtask bench sync` builds this optimised and runs
//! `dermdesk-bench sync --out target/bench --doc docs/PERFORMANCE.md`; docs/PERFORMANCE.md says
//! what is measured and how. `cargo xtask bench images` runs `dermdesk-bench images` likewise.

mod fixtures;
mod images;
mod startup;
mod stats;
mod sync;
mod worklist;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: dermdesk-bench sync [--repetitions N] [--photos N] [--referrals N] \
                     [--concurrency N] [--out DIR] [--doc FILE] \
                     [--only photos|metadata]\n       \
                     dermdesk-bench images [--repetitions N] [--out DIR] [--doc FILE]\n       \
                     dermdesk-bench worklist [--repetitions N] [--iterations N] [--referrals N] \
                     [--out DIR] [--doc FILE]\n       \
                     dermdesk-bench startup-seed --data-home DIR --hub-dir DIR --port N \
                     --templates DIR [--referrals N] (inside a D-Bus session with a Secret \
                     Service; run by `cargo xtask bench startup`, passphrase in \
                     DERMDESK_BENCH_PASSPHRASE)";

/// An option's value as a positive whole number, or an error naming the option.
fn positive(arg: &str, text: &str) -> Result<usize, String> {
    text.parse().ok().filter(|n| *n > 0).ok_or_else(|| format!("{arg}: {text} is not a positive number"))
}

fn parse_images(args: &[String]) -> Result<images::Settings, String> {
    let mut settings = images::Settings { repetitions: 5, out_dir: PathBuf::from("target/bench"), doc: None };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--repetitions" => settings.repetitions = positive(arg, value)?,
            "--out" => settings.out_dir = PathBuf::from(value),
            "--doc" => settings.doc = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(settings)
}

fn parse_sync(args: &[String]) -> Result<sync::Settings, String> {
    let mut settings = sync::Settings {
        repetitions: 5,
        photos: 32,
        referrals: 10_000,
        // The engine's default (`EngineSettings::photo_concurrency`).
        concurrency: dermdesk_core::engine::EngineSettings::default().photo_concurrency,
        out_dir: PathBuf::from("target/bench"),
        doc: None,
        only: None,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{arg} needs a value"));
        let mut number = || value().and_then(|text| positive(arg, text));
        match arg.as_str() {
            "--repetitions" => settings.repetitions = number()?,
            "--photos" => settings.photos = number()?,
            "--referrals" => settings.referrals = number()?,
            "--concurrency" => settings.concurrency = number()?,
            "--out" => settings.out_dir = PathBuf::from(value()?),
            "--doc" => settings.doc = Some(PathBuf::from(value()?)),
            "--only" => {
                settings.only = Some(match value()?.as_str() {
                    "photos" => sync::Part::Photos,
                    "metadata" => sync::Part::Metadata,
                    other => return Err(format!("--only photos|metadata, not {other}")),
                })
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(settings)
}

fn parse_worklist(args: &[String]) -> Result<worklist::Settings, String> {
    let mut settings = worklist::Settings {
        repetitions: 5,
        iterations: 20,
        referrals: 100_000,
        out_dir: PathBuf::from("target/bench"),
        doc: None,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{arg} needs a value"));
        let mut number = || value().and_then(|text| positive(arg, text));
        match arg.as_str() {
            "--repetitions" => settings.repetitions = number()?,
            "--iterations" => settings.iterations = number()?,
            "--referrals" => settings.referrals = number()?,
            "--out" => settings.out_dir = PathBuf::from(value()?),
            "--doc" => settings.doc = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(settings)
}

fn parse_seed(args: &[String]) -> Result<startup::SeedSettings, String> {
    let (mut data_home, mut hub_dir, mut port, mut templates) = (None, None, None, None);
    let mut referrals = 10_000;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--data-home" => data_home = Some(PathBuf::from(value)),
            "--hub-dir" => hub_dir = Some(PathBuf::from(value)),
            "--templates" => templates = Some(PathBuf::from(value)),
            "--port" => port = Some(value.parse().map_err(|_| format!("--port: {value} is not a port"))?),
            "--referrals" => referrals = positive(arg, value)?,
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let passphrase =
        std::env::var("DERMDESK_BENCH_PASSPHRASE").map_err(|_| "DERMDESK_BENCH_PASSPHRASE is not set")?;
    Ok(startup::SeedSettings {
        data_home: data_home.ok_or("--data-home is required")?,
        hub_dir: hub_dir.ok_or("--hub-dir is required")?,
        port: port.ok_or("--port is required")?,
        templates: templates.ok_or("--templates is required")?,
        referrals,
        passphrase,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("sync") => match parse_sync(&args[1..]) {
            Ok(settings) => sync::run(settings).await,
            Err(error) => Err(error),
        },
        Some("images") => match parse_images(&args[1..]) {
            Ok(settings) => images::run(settings).await,
            Err(error) => Err(error),
        },
        // The desk `cargo xtask bench startup` starts the app on (startup.rs).
        Some("startup-seed") => match parse_seed(&args[1..]) {
            Ok(settings) => startup::seed(settings).await,
            Err(error) => Err(error),
        },
        // The 4-up compare's own process (peak memory is per process), started by `images`.
        Some("compare4-child") => images::compare4_child(&args[1..]),
        Some("worklist") => parse_worklist(&args[1..]).and_then(|settings| {
            // Blocking work (SQLite) throughout: off the async runtime's worker threads.
            tokio::task::block_in_place(|| worklist::run(settings))
        }),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dermdesk-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
