//! The installed product (issue 14, part 4): the `.deb` that `cargo xtask bundle` makes,
//! installed with dpkg on this machine, started as `/usr/bin/dermdesk` under Xvfb with a real
//! keychain, connected to a reference hub on loopback, synced, a photo opened and an outcome
//! signed and received by the hub; then the package removed, and what is left on disk written
//! down (`target/e2e/install.json`).
//!
//! Run by `cargo xtask install-test` (as root: it changes the system), which builds the bundles
//! and sets `DERMDESK_DEB`, `DERMDESK_RPM` and `DERMDESK_APP=/usr/bin/dermdesk`; without them
//! the test says so and skips. It fails when the package misses its binary, desktop entry or
//! icons, declares other dependencies, installs an app that does not start, carries the demo,
//! or cannot connect, sync, show a photo and sign.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dermdesk_e2e::{
    click, free_port, open_referral, type_into, unlock, wait_for, wait_for_first_sync, Driver, HubProcess,
};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

/// The package name dpkg knows (the bundler's: the product name in kebab case).
const PACKAGE: &str = "derm-desk";
const INSTALLED_APP: &str = "/usr/bin/dermdesk";
const DESKTOP_FILE: &str = "/usr/share/applications/Derm Desk.desktop";
/// Where the bundler puts each PNG of `bundle.icon` (hicolor, by size; `@2` marks the 256 px
/// "128x128@2x" as Tauri names it).
const ICONS: &[&str] = &[
    "/usr/share/icons/hicolor/32x32/apps/dermdesk.png",
    "/usr/share/icons/hicolor/64x64/apps/dermdesk.png",
    "/usr/share/icons/hicolor/128x128/apps/dermdesk.png",
    "/usr/share/icons/hicolor/256x256@2/apps/dermdesk.png",
    "/usr/share/icons/hicolor/512x512/apps/dermdesk.png",
];
/// The dependencies the .deb must declare: what every Tauri app links on Linux, and the
/// system libcrypto the cache's SQLCipher uses (tauri.conf.json).
const DEPENDS: &[&str] = &["libwebkit2gtk-4.1-0", "libgtk-3-0", "libssl3"];
const ADMIN_TOKEN: &str = "install-test-admin-token-synthetic";
const REFERRAL_ID: &str = "INSTALL-0001";

#[tokio::test(flavor = "multi_thread")]
async fn the_installed_deb_connects_syncs_signs_and_leaves_only_the_cache() {
    let Some(deb) = std::env::var_os("DERMDESK_DEB").map(PathBuf::from) else {
        eprintln!(
            "skipped install: it installs a .deb into this system; run it with `cargo xtask install-test`"
        );
        return;
    };
    assert_eq!(
        std::env::var("DERMDESK_APP").as_deref(),
        Ok(INSTALLED_APP),
        "the test drives the installed app"
    );
    let version = bundle_version();
    let mut report = Report::default();

    // The package as built: its metadata and files, before anything is installed.
    let fields = control_fields(&deb);
    assert_eq!(fields.get("Package").map(String::as_str), Some(PACKAGE), "{fields:?}");
    assert_eq!(fields.get("Version"), Some(&version), "the .deb's version is tauri.conf.json's");
    let depends = fields.get("Depends").cloned().unwrap_or_default();
    for needed in DEPENDS {
        assert!(
            depends.split(", ").any(|dependency| dependency == *needed),
            "Depends lacks {needed}: {depends}"
        );
    }
    let files = deb_files(&deb);
    for needed in [INSTALLED_APP, DESKTOP_FILE].iter().chain(ICONS) {
        assert!(files.iter().any(|file| file == needed), "the .deb misses {needed}: {files:#?}");
    }
    if let Some(rpm) = std::env::var_os("DERMDESK_RPM").map(PathBuf::from) {
        check_rpm(&rpm, &files);
    }

    // Installed into the system, as a consultant's IT would (dependencies from apt if missing).
    let started = Instant::now();
    let installed = Installed::install(&deb);
    report.step("install (dpkg -i)", started);
    check_desktop_entry();
    for icon in ICONS {
        assert!(Path::new(icon).is_file(), "{icon} is not installed");
    }
    let missing_libraries = command_output(Command::new("ldd").arg(INSTALLED_APP));
    assert!(
        !missing_libraries.contains("not found"),
        "the installed app misses libraries:\n{missing_libraries}"
    );

    // Its command line: the package's version, and no demo in it.
    let output = Command::new(INSTALLED_APP).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), format!("Derm Desk {version}"));
    let output = Command::new(INSTALLED_APP).arg("--demo").env_remove("DISPLAY").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "--demo is refused: {output:?}");
    assert!(stderr.contains("not part of this build"), "{stderr}");

    // The service: a hub on loopback with a consultant, a referral with a photo, an enrolment code.
    let world = std::env::temp_dir().join(format!("dermdesk-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&world);
    let port = free_port();
    let hub = HubProcess::start_with_admin(world.join("hub"), port, ADMIN_TOKEN);
    let (code, content_id) = seed(&hub);
    let service = format!("http://127.0.0.1:{port}");

    // The installed app in a session of its own (its own data folders, D-Bus and keyring,
    // kept after the app is gone so that what the package leaves behind can be read).
    let home = world.join("home");
    let (data_home, cache_home, config_home) = (home.join("data"), home.join("cache"), home.join("config"));
    let env = [
        ("XDG_DATA_HOME", data_home.to_str().unwrap().to_owned()),
        ("XDG_CACHE_HOME", cache_home.to_str().unwrap().to_owned()),
        ("XDG_CONFIG_HOME", config_home.to_str().unwrap().to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let started = Instant::now();
    let driver = Driver::start_logged(&env, &world.join("app.log"));
    let client = driver.open_app_locked(&[]).await;
    dermdesk_e2e::connect(&client, &service, &code).await.expect("the installed app connects");
    unlock(&client, dermdesk_e2e::TEST_PASSPHRASE).await;
    report.step("start, connect and choose the passphrase", started);

    let started = Instant::now();
    wait_for_first_sync(&client, Duration::from_secs(120)).await;
    report.step("first sync", started);
    let started = Instant::now();
    open_photo_and_sign(&client, &content_id).await;
    report.step("open the photo, sign, sent", started);
    let outcomes =
        hub.admin_json(ADMIN_TOKEN, "GET", &format!("/admin/referrals/{REFERRAL_ID}/outcomes"), &Value::Null);
    let outcomes = outcomes.as_array().expect("a list of outcomes");
    assert_eq!(outcomes.len(), 1, "the hub holds the signed outcome: {outcomes:?}");
    assert!(outcomes[0].to_string().contains("gp_treatment_plan"), "{:?}", outcomes[0]);

    // Quit (the whole session), remove the package, and see what stays.
    client.close().await.unwrap();
    drop(driver);
    drop(hub);
    let started = Instant::now();
    installed.remove();
    report.step("remove (dpkg -r)", started);
    for gone in [INSTALLED_APP, DESKTOP_FILE].iter().chain(ICONS) {
        assert!(!Path::new(gone).exists(), "{gone} is still there after dpkg -r");
    }
    // Gone from dpkg's database (no configuration files kept: the package has none).
    let query = Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]).output().unwrap();
    let status = String::from_utf8_lossy(&query.stdout);
    assert!(
        !query.status.success() || status.contains("not-installed"),
        "dpkg still knows {PACKAGE}: {status}"
    );
    let left = files_under(&home);
    // The encrypted cache is the consultant's: removing the program does not remove it (only
    // signing out does), so the README's install section says so.
    assert!(
        left.iter().any(|(path, _)| path.ends_with("/desk/cache.sqlite3")),
        "the encrypted cache stays after dpkg -r: {left:#?}"
    );
    report.write(&deb, &left);
    let _ = std::fs::remove_dir_all(&world);
}

/// Issue 14, part 5, with the real bundles: the installed 0.1.0 is offered the next version
/// the service publishes (its note saying the signed outcome that waits is kept), refuses the
/// installer when its bytes were tampered with (the signature no longer matches) and changes
/// nothing, installs the genuine one (tauri-plugin-updater: `dpkg -i` through pkexec, or sudo
/// on a machine without polkit), and restarts itself into it; the next version opens the same
/// encrypted cache with the passphrase, the draft is there, and the waiting outcome is sent
/// once.
#[tokio::test(flavor = "multi_thread")]
async fn the_installed_deb_updates_itself_to_the_next_signed_release_keeping_the_cache() {
    let (Some(deb), Some(next_deb), Ok(next_version), Some(key_file)) = (
        std::env::var_os("DERMDESK_DEB").map(PathBuf::from),
        std::env::var_os("DERMDESK_NEXT_DEB").map(PathBuf::from),
        std::env::var("DERMDESK_NEXT_VERSION"),
        std::env::var_os("DERMDESK_UPDATE_KEY").map(PathBuf::from),
    ) else {
        eprintln!("skipped the update test: it installs .debs into this system; run it with `cargo xtask install-test`");
        return;
    };
    let version = bundle_version();
    assert_ne!(version, next_version);
    let world = std::env::temp_dir().join(format!("dermdesk-update-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&world);
    let installed = Installed::install(&deb);
    assert_eq!(installed_version(), version);

    // The service publishes the next version, signed with the release key, but the file it
    // serves was changed after signing.
    let port = free_port();
    let service = format!("http://127.0.0.1:{port}");
    let updates = world.join("updates");
    std::fs::create_dir_all(&updates).unwrap();
    // Published under a plain name, as `cargo xtask sign-update` publishes it (the bundler's
    // has a space, which the hub does not serve).
    let name = next_deb.file_name().unwrap().to_str().unwrap().replace(' ', "-");
    let genuine = std::fs::read(&next_deb).unwrap();
    let signature = sign_release(&key_file, &genuine, &name, &next_version);
    let mut tampered = genuine.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x20;
    std::fs::write(updates.join(&name), &tampered).unwrap();
    let entry = json!({ "url": format!("{service}/updates/{name}"), "signature": signature });
    let manifest = json!({
        "version": next_version,
        "notes": "Synthetic test release",
        "pub_date": "2026-06-15T09:00:00Z",
        "platforms": { "linux-x86_64-deb": entry },
    });
    std::fs::write(updates.join("latest.json"), manifest.to_string()).unwrap();
    let hub = HubProcess::start_with_admin_and(
        world.join("hub"),
        port,
        ADMIN_TOKEN,
        // Faults off but switchable (the outcome below must wait); updates served.
        &["--faults", "", "--updates", updates.to_str().unwrap()],
    );
    let (code, consultant_id) = consultant_with_code(&hub);
    add_referral(&hub, &consultant_id, REFERRAL_ID);
    add_referral(&hub, &consultant_id, DRAFT_REFERRAL_ID);

    let home = world.join("home");
    let data_home = home.join("data");
    let env = [
        ("XDG_DATA_HOME", data_home.to_str().unwrap().to_owned()),
        ("XDG_CACHE_HOME", home.join("cache").to_str().unwrap().to_owned()),
        ("XDG_CONFIG_HOME", home.join("config").to_str().unwrap().to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let driver = Driver::start_logged(&env, &world.join("app.log"));
    let client = driver.open_app_locked(&[]).await;
    dermdesk_e2e::connect(&client, &service, &code).await.expect("the installed app connects");
    unlock(&client, dermdesk_e2e::TEST_PASSPHRASE).await;
    wait_for_first_sync(&client, Duration::from_secs(120)).await;
    assert_eq!(shown_version(&client).await, version, "the device panel names the installed version");

    // 1. Offered, not installed.
    let headline = wait_for(&client, "the update offer", Duration::from_secs(120), OFFER_SHOWN).await;
    assert_eq!(headline.as_str().unwrap(), format!("Derm Desk {next_version} is available"));

    // 2. A draft on one referral; on another an outcome signed while the service refuses
    // outcomes, so it waits in the outbox; the offer says it is kept.
    open_referral(&client, DRAFT_REFERRAL_ID).await;
    type_into(&client, "#diagnosis", "Draft diagnosis kept across the update").await;
    wait_for(
        &client,
        "the draft saved",
        Duration::from_secs(10),
        "document.querySelector('#draft-state')?.textContent.startsWith('Draft saved')",
    )
    .await;
    hub.admin_json(ADMIN_TOKEN, "PUT", "/admin/faults", &json!({ "error_5xx": 1.0 }));
    open_referral(&client, REFERRAL_ID).await;
    sign_open_referral(&client).await;
    let note = wait_for(
        &client,
        "the offer's note on the waiting outcome",
        Duration::from_secs(30),
        "(() => { const n = document.querySelector('#update-offer-note')?.textContent; return n && n.includes('waiting') && n; })()",
    )
    .await;
    assert!(note.as_str().unwrap().starts_with("1 signed outcome is waiting to be sent"), "{note}");
    let state = client
        .execute("return document.querySelector('#outcome-state')?.dataset.state;", vec![])
        .await
        .unwrap();
    assert_eq!(state, json!("queued"), "the outcome waits while the service refuses outcomes");

    // 3. The tampered installer: refused, said plainly, nothing installed.
    click(&client, "#update-install").await;
    let refusal = wait_for(&client, "the refusal", Duration::from_secs(120), REFUSAL).await;
    let refusal = refusal.as_str().unwrap().to_owned();
    assert!(refusal.contains("signature does not match"), "{refusal}");
    assert!(refusal.contains("Nothing was installed or changed"), "{refusal}");
    assert_eq!(installed_version(), version, "the tampered package was not installed");

    // 4. The genuine installer: installed, and the app restarts into it by itself.
    std::fs::write(updates.join(&name), &genuine).unwrap();
    let before = app_processes(&data_home);
    assert_eq!(before.len(), 1, "one app running: {before:?}");
    click(&client, "#update-install").await;
    let started = Instant::now();
    let relaunched = loop {
        let now = app_processes(&data_home);
        if let [pid] = now[..] {
            if pid != before[0] {
                break pid;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the app did not restart into the update (running: {now:?}, installed: {}); log: {}",
            installed_version(),
            world.join("app.log").display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(installed_version(), next_version, "dpkg has the next version");
    let output = Command::new(INSTALLED_APP).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), format!("Derm Desk {next_version}"));
    let exe = std::fs::read_link(format!("/proc/{relaunched}/exe")).unwrap();
    assert_eq!(exe, Path::new(INSTALLED_APP), "the restarted app runs the installed (new) binary");
    // That process has no WebDriver session: it is stopped, and the next version is started
    // again under the driver, as the consultant would see it after the restart.
    let _ = client.close().await;
    let _ = Command::new("kill").arg(relaunched.to_string()).status();
    let started = Instant::now();
    while !app_processes(&data_home).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "the restarted app did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 5. The next version: the same desk, locked, opened with the same passphrase; the draft
    // kept; the waiting outcome goes once the service takes outcomes again, exactly once.
    hub.admin_json(ADMIN_TOKEN, "PUT", "/admin/faults", &json!({}));
    let client = driver.open_app_locked(&[]).await;
    assert_eq!(dermdesk_e2e::first_screen(&client).await, "locked", "the updated app opens the same desk");
    unlock(&client, dermdesk_e2e::TEST_PASSPHRASE).await;
    assert_eq!(shown_version(&client).await, next_version);
    open_referral(&client, DRAFT_REFERRAL_ID).await;
    let diagnosis =
        client.execute("return document.querySelector('#diagnosis').value;", vec![]).await.unwrap();
    assert_eq!(diagnosis, json!("Draft diagnosis kept across the update"));
    open_referral(&client, REFERRAL_ID).await;
    wait_for(
        &client,
        "the waiting outcome to be sent by the next version",
        Duration::from_secs(120),
        "document.querySelector('#outcome-state')?.dataset.state === 'sent'",
    )
    .await;
    let outcomes =
        hub.admin_json(ADMIN_TOKEN, "GET", &format!("/admin/referrals/{REFERRAL_ID}/outcomes"), &Value::Null);
    assert_eq!(outcomes.as_array().map(Vec::len), Some(1), "sent exactly once: {outcomes}");

    client.close().await.unwrap();
    drop(driver);
    drop(hub);
    installed.remove();
    let _ = std::fs::remove_dir_all(&world);
}

const DRAFT_REFERRAL_ID: &str = "INSTALL-0002";
const OFFER_SHOWN: &str = "(() => { const o = document.querySelector('#update-offer'); \
     return o && !o.hidden && document.querySelector('#update-offer-headline').textContent; })()";
const REFUSAL: &str = "(() => { const e = document.querySelector('#update-offer-error'); \
     return e && !e.hidden && !document.querySelector('#update-install').disabled && e.textContent; })()";

/// The version dpkg has installed.
fn installed_version() -> String {
    command_output(Command::new("dpkg-query").args(["-W", "-f=${Version}", PACKAGE]))
}

/// The version the device panel names (then closes it).
async fn shown_version(client: &Client) -> String {
    click(client, "#consultant").await;
    let version = wait_for(
        client,
        "the version in the device panel",
        Duration::from_secs(10),
        "document.querySelector('#device-dialog')?.open && document.querySelector('#app-version')?.textContent",
    )
    .await;
    click(client, "#device-close").await;
    version.as_str().unwrap().to_owned()
}

/// The installed app's processes running with `data_home` (WebKit's helper processes are other
/// binaries).
fn app_processes(data_home: &Path) -> Vec<u32> {
    let wanted = format!("XDG_DATA_HOME={}", data_home.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(exe) = std::fs::read_link(entry.path().join("exe")) else { continue };
        // A binary replaced on disk while it runs reads as "/usr/bin/dermdesk (deleted)".
        if !exe.to_string_lossy().starts_with(INSTALLED_APP) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|byte| *byte == 0).any(|item| item == wanted.as_bytes()) {
            found.push(pid);
        }
    }
    found.sort_unstable();
    found
}

/// The updater's signature of `bytes` (file `name`, release `version`) with the throwaway
/// release key in `key_file`, as `cargo xtask sign-update` and `tauri signer sign` make it.
fn sign_release(key_file: &Path, bytes: &[u8], name: &str, version: &str) -> String {
    use base64::Engine as _;
    let base64 = base64::engine::general_purpose::STANDARD;
    let text =
        String::from_utf8(base64.decode(std::fs::read_to_string(key_file).unwrap().trim()).unwrap()).unwrap();
    let key = minisign::SecretKeyBox::from_string(&text).unwrap().into_unencrypted_secret_key().unwrap();
    let trusted = format!("timestamp:1781514000\tfile:{name}\tversion:{version}");
    let signature = minisign::sign(
        None,
        &key,
        std::io::Cursor::new(bytes),
        Some(&trusted),
        Some("signature from tauri secret key"),
    )
    .unwrap();
    base64.encode(signature.to_string())
}

/// The version the bundle is made with (tauri.conf.json; the bundler refuses a Cargo.toml that
/// says otherwise).
fn bundle_version() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tauri.conf.json");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    config["version"].as_str().expect("tauri.conf.json has a version").to_owned()
}

async fn open_photo_and_sign(client: &Client, content_id: &str) {
    open_referral(client, REFERRAL_ID).await;
    // The photo, decoded from the encrypted cache and served by the installed app's photo: scheme.
    let shown = wait_for(
        client,
        "the photo on screen",
        Duration::from_secs(60),
        "(() => { const p = document.querySelector('.pane-cell[data-index=\"0\"]'); return p?.dataset.loaded === 'true' && p.dataset.contentId; })()",
    )
    .await;
    assert_eq!(shown.as_str(), Some(content_id), "the photo shown is the referral's");
    sign_open_referral(client).await;
    wait_for(
        client,
        "the outcome to be sent",
        Duration::from_secs(90),
        "document.querySelector('#outcome-state')?.dataset.state === 'sent'",
    )
    .await;
}

/// Fills in a treatment plan for the open referral and signs it (the state it lands in is the
/// caller's to wait for).
async fn sign_open_referral(client: &Client) {
    click(client, "#kind-gp_treatment_plan").await;
    client.find(Locator::Css("#diagnosis")).await.unwrap().send_keys("Seborrhoeic keratosis").await.unwrap();
    client
        .find(Locator::Css("#plan"))
        .await
        .unwrap()
        .send_keys("Benign. Reassure the patient.")
        .await
        .unwrap();
    click(client, "#sign-and-send").await;
    wait_for(
        client,
        "the confirmation",
        Duration::from_secs(10),
        "document.querySelector('#confirm-dialog')?.open",
    )
    .await;
    click(client, "#confirm-sign").await;
    wait_for(
        client,
        "the outcome signed",
        Duration::from_secs(30),
        "['queued', 'sent'].includes(document.querySelector('#outcome-state')?.dataset.state)",
    )
    .await;
}

/// A consultant, one routine referral (consent given) with one synthetic photo, and an
/// enrolment code for the consultant: (code, the photo's content id).
fn seed(hub: &HubProcess) -> (String, String) {
    let (code, consultant_id) = consultant_with_code(hub);
    (code, add_referral(hub, &consultant_id, REFERRAL_ID))
}

/// A consultant and a one-time enrolment code for them: (code, consultant id).
fn consultant_with_code(hub: &HubProcess) -> (String, String) {
    let consultant = hub.admin_json(
        ADMIN_TOKEN,
        "POST",
        "/admin/consultants",
        &json!({"display_name": "Dr Install Test"}),
    );
    let consultant_id = consultant["id"].as_str().unwrap().to_owned();
    let code = hub.admin_json(
        ADMIN_TOKEN,
        "POST",
        "/admin/enrolment-codes",
        &json!({"consultant_id": consultant_id}),
    );
    (code["enrolment_code"].as_str().unwrap().to_owned(), consultant_id)
}

/// A routine referral `id` (consent given) with one synthetic photo, assigned to the
/// consultant: the photo's content id.
fn add_referral(hub: &HubProcess, consultant_id: &str, id: &str) -> String {
    let (photo, width, height) = synthetic_photo();
    let (status, body) = hub.admin(ADMIN_TOKEN, "POST", "/admin/photos", "image/jpeg", &photo);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let content_id =
        serde_json::from_slice::<Value>(&body).unwrap()["content_id"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now();
    let referral = json!({
        "id": id, "version": 1,
        "patient": {"name": "Synthetic Installtest", "nhs_number": "9990000018", "date_of_birth": "1970-01-01", "sex": "female"},
        "practice": {"ods_code": "Y09992", "name": "Synthetic Install Practice", "nation": "england"},
        "referrer": {"name": "Dr Synthetic Referrer", "role": "GP"},
        "received_at": (now - chrono::Duration::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "urgency": "routine",
        "clinical": {"question": "Is this benign?", "history": "Slowly growing for months.", "duration": "about 3 months", "medications": "none"},
        "consent": {"given": true, "recorded_at": (now - chrono::Duration::hours(4)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "recorded_by": "Practice nurse"},
        "photos": [{
            "content_id": content_id, "size": photo.len(), "width": width, "height": height,
            "media_type": "image/jpeg", "captured_at": "2026-06-15T09:00:00Z", "view": "overview",
            "body_site": "left forearm", "source": "gp_practice",
        }],
    });
    hub.admin_json(
        ADMIN_TOKEN,
        "POST",
        "/admin/referrals",
        &json!({"referral": referral, "assign_to": consultant_id}),
    );
    content_id
}

/// A synthetic photo: a skin-toned field with a darker oval in the middle.
fn synthetic_photo() -> (Vec<u8>, u32, u32) {
    let (width, height) = (800u32, 600u32);
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (x as f32 - 400.0, (y as f32 - 300.0) * 1.3);
        if dx * dx + dy * dy < 90.0 * 90.0 {
            image::Rgb([122, 74, 50])
        } else {
            image::Rgb([236, 200, 178u8.wrapping_sub((x / 40) as u8)])
        }
    });
    let mut encoded = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 90).encode_image(&pixels).unwrap();
    (encoded, width, height)
}

/// The package installed; removed on drop too, so a failed run leaves no package behind.
struct Installed {
    removed: bool,
}

impl Installed {
    fn install(deb: &Path) -> Installed {
        // A package left by an earlier run that stopped half-way.
        let _ = Command::new("dpkg").args(["-r", PACKAGE]).output();
        let installed = Installed { removed: false };
        let output = Command::new("dpkg").arg("-i").arg(deb).output().unwrap();
        if !output.status.success() {
            // Missing dependencies leave it unconfigured: apt installs them and finishes.
            let fixed = Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=600", "install", "-f", "-y", "-q"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .unwrap();
            assert!(
                fixed.status.success(),
                "dpkg -i failed and apt could not complete it:\n{}\n{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&fixed.stderr)
            );
        }
        let status = command_output(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]));
        assert_eq!(status, "install ok installed", "after dpkg -i");
        installed
    }

    fn remove(mut self) {
        self.removed = true;
        let output = Command::new("dpkg").args(["-r", PACKAGE]).output().unwrap();
        assert!(output.status.success(), "dpkg -r: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.removed {
            let _ = Command::new("dpkg").args(["-r", PACKAGE]).output();
        }
    }
}

/// The control file's fields (continuation lines joined).
fn control_fields(deb: &Path) -> std::collections::BTreeMap<String, String> {
    let control = command_output(Command::new("dpkg-deb").arg("--field").arg(deb));
    let mut fields = std::collections::BTreeMap::new();
    let mut last = String::new();
    for line in control.lines() {
        if let Some(more) = line.strip_prefix(' ') {
            fields.entry(last.clone()).and_modify(|value: &mut String| {
                value.push('\n');
                value.push_str(more);
            });
        } else if let Some((key, value)) = line.split_once(": ") {
            last = key.to_owned();
            fields.insert(key.to_owned(), value.to_owned());
        }
    }
    fields
}

/// The files the .deb installs, as absolute paths (`dpkg-deb --contents` prints `tar tv`
/// lines: mode, owner, size, date, time, then the path, which may hold spaces).
fn deb_files(deb: &Path) -> Vec<String> {
    command_output(Command::new("dpkg-deb").arg("--contents").arg(deb))
        .lines()
        .filter(|line| line.starts_with('-'))
        .map(|line| {
            let mut rest = line;
            for _ in 0..5 {
                rest = rest.trim_start();
                rest = &rest[rest.find(' ').unwrap_or(rest.len())..];
            }
            let path = rest.trim_start();
            format!("/{}", path.strip_prefix("./").unwrap_or(path))
        })
        .collect()
}

/// The .rpm holds the same files as the .deb and requires the same libraries (by soname).
fn check_rpm(rpm: &Path, deb_files: &[String]) {
    if Command::new("rpm").arg("--version").output().is_err() {
        eprintln!("rpm not installed: the .rpm's contents are not checked");
        return;
    }
    let files = command_output(Command::new("rpm").args(["-qlp"]).arg(rpm));
    for file in deb_files {
        assert!(files.lines().any(|line| line == file), "the .rpm misses {file}:\n{files}");
    }
    let requires = command_output(Command::new("rpm").args(["-qpR"]).arg(rpm));
    // The libraries by soname, as rpm names them (SQLCipher's libcrypto from tauri.conf.json).
    for needed in ["libwebkit2gtk-4.1.so.0()(64bit)", "libgtk-3.so.0()(64bit)", "libcrypto.so.3()(64bit)"] {
        assert!(
            requires.lines().any(|line| line.trim() == needed),
            "the .rpm does not require {needed}:\n{requires}"
        );
    }
    let name =
        command_output(Command::new("rpm").args(["-qp", "--queryformat", "%{NAME} %{VERSION}"]).arg(rpm));
    assert_eq!(name, format!("{PACKAGE} {}", bundle_version()));
}

/// The desktop entry as installed: it starts the installed binary with its icon, in the
/// Medical category, and (where desktop-file-utils is installed) passes its validator.
fn check_desktop_entry() {
    let entry = std::fs::read_to_string(DESKTOP_FILE).unwrap_or_else(|e| panic!("{DESKTOP_FILE}: {e}"));
    for line in [
        "Name=Derm Desk",
        "Exec=dermdesk",
        "Icon=dermdesk",
        "Type=Application",
        "Categories=Science;MedicalSoftware;",
    ] {
        assert!(entry.lines().any(|found| found == line), "{DESKTOP_FILE} lacks {line}:\n{entry}");
    }
    if let Ok(output) = Command::new("desktop-file-validate").arg(DESKTOP_FILE).output() {
        assert!(
            output.status.success(),
            "desktop-file-validate: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

fn command_output(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Every file under `root` with its size, paths relative to `root`.
fn files_under(root: &Path) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                files.push((format!("/{relative}"), meta.len()));
            }
        }
    }
    files.sort();
    files
}

/// A path under the test's XDG folders as it is in a user's home by default.
fn as_in_home(path: &str) -> String {
    for (folder, default) in
        [("/data/", "~/.local/share/"), ("/cache/", "~/.cache/"), ("/config/", "~/.config/")]
    {
        if let Some(rest) = path.strip_prefix(folder) {
            return format!("{default}{rest}");
        }
    }
    path.to_owned()
}

/// The figures of the run: each step's seconds, the bundles' sizes, what stays on disk.
#[derive(Default)]
struct Report {
    steps: Vec<(String, f64)>,
}

impl Report {
    fn step(&mut self, name: &str, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("install test: {name}: {seconds:.1} s");
        self.steps.push((name.to_owned(), seconds));
    }

    fn write(&self, deb: &Path, left: &[(String, u64)]) {
        let size =
            |path: Option<PathBuf>| path.and_then(|path| std::fs::metadata(path).ok()).map(|meta| meta.len());
        let report = json!({
            "steps_seconds": self.steps.iter().map(|(name, seconds)| json!({"step": name, "seconds": seconds})).collect::<Vec<_>>(),
            "deb_bytes": size(Some(deb.to_path_buf())),
            "rpm_bytes": size(std::env::var_os("DERMDESK_RPM").map(PathBuf::from)),
            "left_after_dpkg_r": left.iter().map(|(path, bytes)| json!({"path": as_in_home(path), "bytes": bytes})).collect::<Vec<_>>(),
        });
        eprintln!("left on disk after dpkg -r:");
        for (path, bytes) in left {
            eprintln!("  {} ({bytes} bytes)", as_in_home(path));
        }
        let dir = dermdesk_e2e::screenshot_dir();
        std::fs::write(dir.join("install.json"), serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    }
}
