//! `xtask-bundle`: the Linux installers (.deb, .rpm) of an app binary already built, made by
//! the Tauri bundler as a library, with the settings `cargo tauri build` would give it. Run by
//! `cargo xtask bundle` (xtask/src/bundle.rs), which builds the product binary first; built
//! only with the `bundler` feature (xtask/Cargo.toml says why).
//!
//! `tauri_settings` follows tauri-cli 2.12's `get_bundler_settings` and
//! `tauri_config_to_bundle_settings` (crates/tauri-cli/src/interface/{mod,rust}.rs) for what a
//! Linux bundle reads: the package from Cargo.toml (`cargo metadata`), the bundle section of
//! tauri.conf.json, and the libraries the CLI adds to the dependencies on Linux
//! (`libwebkit2gtk-4.1-0` and `libgtk-3-0` for the .deb, their sonames for the .rpm). What the
//! CLI does there that this does not: a tray icon's appindicator library (the app has no tray),
//! platform config files (`tauri.linux.conf.json`; there are none), the `beforeBundleCommand`
//! hook (none), and signing updater artefacts (no updater yet).
//!
//! Usage: `xtask-bundle --binaries DIR --format deb,rpm`; prints each bundle's path.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::str::FromStr as _;

use tauri_bundler::bundle::{AppCategory, PackageType};
use tauri_bundler::{
    AppImageSettings, BundleBinary, BundleSettings, DebianSettings, PackageSettings, RpmSettings,
    SettingsBuilder,
};
use tauri_utils::config::{BundleResources, Config};

type Result<T = ()> = std::result::Result<T, String>;

/// The app package (the workspace root: tauri.conf.json sits beside its Cargo.toml).
const APP_PACKAGE: &str = "dermdesk";

fn main() -> ExitCode {
    log::set_logger(&LOGGER).expect("the only logger");
    log::set_max_level(log::LevelFilter::Info);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match bundle(&args) {
        Ok(paths) => {
            for path in paths {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xtask-bundle: {error}");
            ExitCode::FAILURE
        }
    }
}

fn bundle(args: &[String]) -> Result<Vec<PathBuf>> {
    let mut binaries = None;
    let mut root = root();
    let mut formats = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--binaries" => binaries = Some(PathBuf::from(rest.next().ok_or("--binaries needs a DIR")?)),
            // Another source tree of the app (the install test's next version).
            "--root" => root = PathBuf::from(rest.next().ok_or("--root needs a DIR")?),
            "--format" => {
                for name in rest.next().ok_or("--format needs deb,rpm,...")?.split(',') {
                    formats.push(
                        PackageType::from_short_name(name)
                            .ok_or_else(|| format!("unknown bundle format {name}"))?,
                    );
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let binaries = binaries.ok_or("--binaries DIR (the build's target/release or target/debug) is needed")?;
    let config = read_config(&root)?;
    let mut settings = tauri_settings(&root, &config, &binaries, formats)?;

    settings.set_log_level(log::Level::Error);
    let bundles =
        tauri_bundler::bundle_project(&settings).map_err(|e| format!("the Tauri bundler: {e:#}"))?;
    Ok(bundles.into_iter().flat_map(|bundle| bundle.bundle_paths).collect())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// tauri.conf.json, read with Tauri's own configuration types (unknown keys are errors there).
fn read_config(root: &Path) -> Result<Config> {
    let path = root.join("tauri.conf.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What `cargo tauri build` hands the bundler for the app package in `root`, its binaries in
/// `binaries`, making `formats` (the config's `bundle.targets` when empty).
fn tauri_settings(
    root: &Path,
    config: &Config,
    binaries: &Path,
    formats: Vec<PackageType>,
) -> Result<tauri_bundler::Settings> {
    let package = app_package(root)?;
    let text = |key: &str| package[key].as_str().map(str::to_owned);
    let cargo_version = text("version").ok_or("Cargo.toml has no version")?;
    // The CLI takes tauri.conf.json's version over Cargo's; the app prints Cargo's
    // (`--version`), so two different ones would make a package that lies about its content.
    let version = config.version.clone().unwrap_or_else(|| cargo_version.clone());
    if version != cargo_version {
        return Err(format!(
            "tauri.conf.json says version {version}, Cargo.toml {cargo_version}: make them the same"
        ));
    }
    let authors: Vec<String> = package["authors"]
        .as_array()
        .map(|list| list.iter().filter_map(|author| author.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let default_run = text("default_run");
    let package_settings = PackageSettings {
        product_name: config.product_name.clone().unwrap_or_else(|| APP_PACKAGE.to_owned()),
        version,
        description: text("description").unwrap_or_default(),
        homepage: text("homepage"),
        authors: (!authors.is_empty()).then_some(authors),
        default_run: default_run.clone(),
    };
    // The package's [[bin]] targets; the main one is named like the package or default-run.
    let binaries_list: Vec<BundleBinary> = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|target| {
            target["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .filter_map(|target| target["name"].as_str())
        .map(|name| {
            BundleBinary::new(name.to_owned(), name == APP_PACKAGE || default_run.as_deref() == Some(name))
        })
        .collect();
    if !binaries_list.iter().any(BundleBinary::main) {
        return Err(format!("no main binary in {APP_PACKAGE}'s Cargo.toml"));
    }
    let formats = if formats.is_empty() {
        config.bundle.targets.to_vec().into_iter().map(PackageType::from).collect()
    } else {
        formats
    };
    let target = host_triple()?;
    let arch64bits = ["x86_64", "aarch64", "riscv64"].iter().any(|arch| target.starts_with(arch));
    SettingsBuilder::new()
        .package_settings(package_settings)
        .bundle_settings(bundle_settings(root, config, package["license"].as_str(), arch64bits)?)
        .binaries(binaries_list)
        .project_out_directory(binaries)
        .target(target)
        .package_types(formats)
        .build()
        .map_err(|e| format!("the bundler's settings: {e}"))
}

/// tauri-cli's `tauri_config_to_bundle_settings`, the parts a Linux bundle reads.
fn bundle_settings(
    root: &Path,
    config: &Config,
    cargo_license: Option<&str>,
    arch64bits: bool,
) -> Result<BundleSettings> {
    let bundle = config.bundle.clone();
    let linux = bundle.linux;
    let mut depends_deb = linux.deb.depends.unwrap_or_default();
    let mut depends_rpm = linux.rpm.depends.unwrap_or_default();
    // What every Tauri app on Linux links (the CLI adds these; a tray icon would add more).
    depends_deb.push("libwebkit2gtk-4.1-0".to_owned());
    depends_deb.push("libgtk-3-0".to_owned());
    for library in ["libwebkit2gtk-4.1.so.0", "libgtk-3.so.0"] {
        depends_rpm.push(if arch64bits { format!("{library}()(64bit)") } else { library.to_owned() });
    }
    let (resources, resources_map) = match bundle.resources.unwrap_or(BundleResources::List(Vec::new())) {
        BundleResources::List(paths) => (Some(paths), None),
        BundleResources::Map(map) => (None, Some(map)),
    };
    let category = match bundle.category {
        Some(category) => Some(AppCategory::from_str(&category).map_err(|suggestion| match suggestion {
            Some(suggestion) => format!("invalid bundle.category {category:?}: did you mean {suggestion:?}?"),
            None => format!("invalid bundle.category {category:?}"),
        })?),
        None => None,
    };
    Ok(BundleSettings {
        identifier: Some(config.identifier.clone()),
        publisher: bundle.publisher,
        homepage: bundle.homepage,
        icon: Some(bundle.icon),
        resources,
        resources_map,
        copyright: bundle.copyright,
        category,
        file_associations: bundle.file_associations,
        short_description: bundle.short_description,
        long_description: bundle.long_description,
        external_bin: bundle.external_bin,
        deb: DebianSettings {
            depends: Some(depends_deb),
            recommends: linux.deb.recommends,
            provides: linux.deb.provides,
            conflicts: linux.deb.conflicts,
            replaces: linux.deb.replaces,
            files: linux.deb.files,
            desktop_template: linux.deb.desktop_template,
            section: linux.deb.section,
            priority: linux.deb.priority,
            changelog: linux.deb.changelog,
            pre_install_script: linux.deb.pre_install_script,
            post_install_script: linux.deb.post_install_script,
            pre_remove_script: linux.deb.pre_remove_script,
            post_remove_script: linux.deb.post_remove_script,
        },
        appimage: AppImageSettings {
            files: linux.appimage.files,
            bundle_media_framework: linux.appimage.bundle_media_framework,
            // The deprecated `bundle_xdg_open`: false, as the CLI sets it.
            ..Default::default()
        },
        rpm: RpmSettings {
            depends: Some(depends_rpm),
            recommends: linux.rpm.recommends,
            provides: linux.rpm.provides,
            conflicts: linux.rpm.conflicts,
            obsoletes: linux.rpm.obsoletes,
            release: linux.rpm.release,
            epoch: linux.rpm.epoch,
            files: linux.rpm.files,
            desktop_template: linux.rpm.desktop_template,
            pre_install_script: linux.rpm.pre_install_script,
            post_install_script: linux.rpm.post_install_script,
            pre_remove_script: linux.rpm.pre_remove_script,
            post_remove_script: linux.rpm.post_remove_script,
            compression: linux.rpm.compression,
        },
        license: bundle.license.or_else(|| cargo_license.map(str::to_owned)),
        license_file: bundle.license_file.map(|file| root.join(file)),
        ..Default::default()
    })
}

/// The root package's `cargo metadata` entry (name, version, description, targets, ...).
fn app_package(root: &Path) -> Result<serde_json::Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|package| package["name"] == APP_PACKAGE))
        .cloned()
        .ok_or_else(|| format!("no package {APP_PACKAGE} in the workspace"))
}

/// The triple rustc builds for by default (what the app was built for: no `--target`).
fn host_triple() -> Result<String> {
    let output = Command::new("rustc").arg("-vV").output().map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV printed no host".to_owned())
}

/// The bundler's log (`Bundling Derm Desk_0.1.0_amd64.deb (...)`) on standard error.
struct Logger;

static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("    {}", record.args());
        }
    }

    fn flush(&self) {}
}
