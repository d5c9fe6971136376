//! `compare4-window`: P8 in the real app. Peak memory of Derm Desk while its real window shows
//! four 24-megapixel photos in the 4-up layout and zooms each one in, sampled from /proc:
//! the app process alone, and the app with every process under it (WebKit's web and network
//! processes), summed. Run by `cargo xtask bench images` inside the e2e session (Xvfb, D-Bus,
//! GNOME Keyring, DERMDESK_APP, DERMDESK_HUB).
//!
//! The photos come from a separate hub process (`serve --demo --demo-scale small
//! --demo-large-photos`: the small demo plus one referral of four 6000x4000 synthetic photos),
//! so nothing of the hub is counted. The rendered photos are kept in `<out>/window-cache` and
//! reused by later runs.
//!
//! `compare4-window --out DIR [--doc FILE]`: merges its figures into `DIR/images.json`
//! (`compare4_rss_mb` is the whole tree's peak) and, with `--doc`, writes its section of
//! docs/PERFORMANCE.md.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dermdesk_e2e::{free_port, wait_for, Driver};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

const REFERRAL: &str = "DD-TEST-FOUR-24MP-PHOTOS";
const GOAL_MB: f64 = 400.0;
const DOC_BEGIN: &str = "<!-- bench images window: begin (written by `cargo xtask bench images`) -->";
const DOC_END: &str = "<!-- bench images window: end -->";

type Result<T = ()> = std::result::Result<T, String>;

fn main() {
    if let Err(error) = run() {
        eprintln!("compare4-window: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = None;
    let mut doc = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--out" => out = rest.next().map(PathBuf::from),
            "--doc" => doc = rest.next().map(PathBuf::from),
            // CI's quick run of every benchmark: the same four photos (the measure is about
            // their size), one sample run, figures kept apart by `--out`.
            "--quick" => {}
            other => return Err(format!("unknown option {other}")),
        }
    }
    let out = out.ok_or("--out DIR is required")?;
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let measured = runtime.block_on(measure(&out))?;
    report(&out, doc.as_deref(), &measured)
}

/// Memory of one process, from /proc (kB → MB below).
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_kb: u64,
    pss_kb: u64,
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find(|line| line.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

fn pss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines().find(|line| line.starts_with("Pss:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// (pid, parent pid, command name) of every process.
fn processes() -> Vec<(u32, u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces, so split at the last ')'.
            let (head, tail) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_owned();
            let parent = tail.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, parent, name))
        })
        .collect()
}

/// The app's process: the newest one running DERMDESK_APP.
fn find_app(app: &Path) -> Option<u32> {
    let app = std::fs::canonicalize(app).ok()?;
    processes()
        .into_iter()
        .filter(|(pid, _, _)| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == app))
        .map(|(pid, _, _)| pid)
        .max()
}

/// `root` and every process under it, with their names.
fn tree(root: u32) -> Vec<(u32, String)> {
    let all = processes();
    let mut children: HashMap<u32, Vec<(u32, String)>> = HashMap::new();
    let mut root_name = String::new();
    for (pid, parent, name) in all {
        if pid == root {
            root_name = name.clone();
        }
        children.entry(parent).or_default().push((pid, name));
    }
    let mut found = vec![(root, root_name)];
    let mut index = 0;
    while index < found.len() {
        if let Some(under) = children.get(&found[index].0) {
            found.extend(under.iter().cloned());
        }
        index += 1;
    }
    found
}

#[derive(Debug, Default, Clone)]
struct Peaks {
    samples: u64,
    app_rss_kb: u64,
    tree_rss_kb: u64,
    tree_pss_kb: u64,
    /// Per process at the moment of the tree's RSS peak: name, RSS, of which anonymous
    /// (heap, JS, decoded pixels; the rest is mapped files: code and libraries).
    at_tree_peak: Vec<(String, u64, u64)>,
    baseline_app_rss_kb: u64,
    baseline_tree_rss_kb: u64,
    baseline_split: Vec<(String, u64, u64)>,
}

fn sample(app: u32, peaks: &mut Peaks, with_pss: bool) {
    let processes = tree(app);
    let mut tree_rss = 0;
    let mut tree_pss = 0;
    let mut by_name = Vec::new();
    for (pid, name) in &processes {
        let memory = Memory {
            rss_kb: status_kb(*pid, "VmRSS:").unwrap_or(0),
            pss_kb: if with_pss { pss_kb(*pid).unwrap_or(0) } else { 0 },
        };
        tree_rss += memory.rss_kb;
        tree_pss += memory.pss_kb;
        if memory.rss_kb > 0 {
            by_name.push((name.clone(), memory.rss_kb, status_kb(*pid, "RssAnon:").unwrap_or(0)));
        }
        if *pid == app {
            peaks.app_rss_kb = peaks.app_rss_kb.max(memory.rss_kb);
        }
    }
    peaks.samples += 1;
    if tree_rss > peaks.tree_rss_kb {
        peaks.tree_rss_kb = tree_rss;
        peaks.at_tree_peak = by_name;
    }
    peaks.tree_pss_kb = peaks.tree_pss_kb.max(tree_pss);
}

struct Measured {
    peaks: Peaks,
    app_hwm_kb: u64,
    seconds: f64,
    panes_zoomed: usize,
}

async fn measure(out: &Path) -> Result<Measured> {
    let hub_binary =
        std::env::var("DERMDESK_HUB").map_err(|_| "DERMDESK_HUB: run through `cargo xtask bench images`")?;
    let app_binary =
        std::env::var("DERMDESK_APP").map_err(|_| "DERMDESK_APP: run through `cargo xtask bench images`")?;
    let scratch = std::env::temp_dir().join(format!("dermdesk-compare4-window-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;

    // The hub, with its rendered photos kept between runs.
    let port = free_port();
    let mut hub = Command::new(&hub_binary)
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--demo",
            "--demo-scale",
            "small",
            "--demo-large-photos",
        ])
        .arg("--db")
        .arg(scratch.join("hub.sqlite3"))
        .env("XDG_CACHE_HOME", out.join("window-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the hub: {e}"))?;
    eprintln!("compare4-window: seeding the hub (four 24 MP photos are rendered on the first run)");
    let mut code = None;
    for line in std::io::BufReader::new(hub.stdout.take().ok_or("hub stdout")?).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(found) = line.strip_prefix("Enrolment code: ") {
            code = Some(found.trim().to_owned());
            break;
        }
    }
    let code = code.ok_or("the hub printed no enrolment code")?;
    let url = format!("http://127.0.0.1:{port}");
    let data = scratch.join("data");
    let driver = Driver::start_with_env(&[
        ("DERMDESK_HUB_URL", url.as_str()),
        ("DERMDESK_ENROLMENT_CODE", code.as_str()),
        ("XDG_DATA_HOME", data.to_str().ok_or("path")?),
    ]);
    let client = driver.open_app(&[]).await;
    let result = drive_and_sample(&client, Path::new(&app_binary)).await;
    let _ = client.close().await;
    drop(driver);
    let _ = hub.kill();
    let _ = hub.wait();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn drive_and_sample(client: &Client, app_binary: &Path) -> Result<Measured> {
    let row = format!(".worklist-row[data-referral-id=\"{REFERRAL}\"]");
    wait_for(
        client,
        "the four-photo referral",
        Duration::from_secs(300),
        &format!("document.querySelector('{row}')"),
    )
    .await;
    wait_for(
        client,
        "every photo downloaded",
        Duration::from_secs(300),
        "document.querySelector('#sync-progress')?.dataset.active === 'false' \
         && !document.querySelector('#sync-last').textContent.includes('Not synced')",
    )
    .await;
    let app = find_app(app_binary).ok_or("the app's process was not found in /proc")?;
    let mut baseline = Peaks::default();
    sample(app, &mut baseline, false);

    // Sampled every 100 ms (PSS, costlier to read, every 5th time) until the run ends.
    let peaks = Arc::new(Mutex::new(Peaks {
        baseline_app_rss_kb: baseline.app_rss_kb,
        baseline_tree_rss_kb: baseline.tree_rss_kb,
        baseline_split: baseline.at_tree_peak.clone(),
        ..Peaks::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peaks, stop) = (Arc::clone(&peaks), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut current = peaks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
                sample(app, &mut current, count.is_multiple_of(5));
                *peaks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = current;
                count += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let started = Instant::now();
    let panes_zoomed = compare_four(client, &row).await;
    // Let late tiles and frees land before the last samples.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let app_hwm_kb = status_kb(app, "VmHWM:").unwrap_or(0);
    let peaks = peaks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    Ok(Measured { peaks, app_hwm_kb, seconds, panes_zoomed })
}

const ALL_FOUR_LOADED: &str = "[...document.querySelectorAll('.pane-cell')].slice(0, 4).every(p => !p.hidden && p.dataset.loaded === 'true')";

/// Opens the referral, shows its four photos in the 4-up layout, then zooms each pane in to
/// 1:1 and twice more (×2.25), waiting each time for every tile on screen, and fits it again.
async fn compare_four(client: &Client, row: &str) -> usize {
    client.execute(&format!("document.querySelector('{row}').click();"), vec![]).await.unwrap();
    wait_for(
        client,
        "the referral open",
        Duration::from_secs(30),
        &format!("document.querySelector('#detail-content')?.dataset.referralId === '{REFERRAL}'"),
    )
    .await;
    client.find(Locator::Css("#layout-4")).await.unwrap().click().await.unwrap();
    let distinct = "new Set([...document.querySelectorAll('.pane-cell')].slice(0, 4).map(p => p.dataset.contentId)).size === 4";
    wait_for(
        client,
        "four photos in four panes",
        Duration::from_secs(120),
        &format!("{ALL_FOUR_LOADED} && {distinct}"),
    )
    .await;
    let mut zoomed = 0;
    for index in 0..4 {
        let pane = format!(".pane-cell[data-index=\"{index}\"]");
        client.find(Locator::Css(&pane)).await.unwrap().click().await.unwrap();
        client.find(Locator::Css("#viewer-actual")).await.unwrap().click().await.unwrap();
        for _ in 0..2 {
            client.find(Locator::Css("#viewer-zoom-in")).await.unwrap().click().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        let loaded = format!("document.querySelector('{pane}').dataset.loaded === 'true'");
        wait_for(client, &format!("pane {} zoomed in", index + 1), Duration::from_secs(120), &loaded).await;
        zoomed += 1;
    }
    for index in 0..4 {
        client
            .find(Locator::Css(&format!(".pane-cell[data-index=\"{index}\"]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        client.find(Locator::Css("#viewer-fit")).await.unwrap().click().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    wait_for(client, "all four fitted again", Duration::from_secs(120), ALL_FOUR_LOADED).await;
    zoomed
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// "name N MB (M MB anonymous), …", processes of the same name added up, largest first.
fn split_by_name(processes: &[(String, u64, u64)]) -> String {
    let mut by_name: Vec<(String, u64, u64)> = Vec::new();
    for (name, kb, anon_kb) in processes {
        match by_name.iter_mut().find(|(known, _, _)| known == name) {
            Some(entry) => {
                entry.1 += kb;
                entry.2 += anon_kb;
            }
            None => by_name.push((name.clone(), *kb, *anon_kb)),
        }
    }
    by_name.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    by_name
        .iter()
        .map(|(name, kb, anon_kb)| format!("{name} {:.0} MB ({:.0} MB anonymous)", mb(*kb), mb(*anon_kb)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn report(out: &Path, doc: Option<&Path>, measured: &Measured) -> Result {
    let peaks = &measured.peaks;
    let tree_mb = mb(peaks.tree_rss_kb);
    let split = split_by_name(&peaks.at_tree_peak);
    let baseline_split = split_by_name(&peaks.baseline_split);
    let path = out.join("images.json");
    let mut json: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| json!({}));
    let figures = json!({
        "compare4_rss_mb": tree_mb,
        "compare4_app_rss_mb": mb(peaks.app_rss_kb),
        "compare4_app_hwm_mb": mb(measured.app_hwm_kb),
        "compare4_tree_pss_mb": mb(peaks.tree_pss_kb),
        "compare4_baseline_app_rss_mb": mb(peaks.baseline_app_rss_kb),
        "compare4_baseline_tree_rss_mb": mb(peaks.baseline_tree_rss_kb),
        "compare4_window_seconds": measured.seconds,
        "compare4_window_samples": peaks.samples,
        "compare4_tree_at_peak": split,
        "compare4_tree_before": baseline_split,
        "compare4_method": "real window, 4-up, four 6000x4000 photos, each pane 1:1 then x2.25; peak of summed VmRSS over the app's process tree, sampled every 100 ms",
    });
    if let Some(object) = json.as_object_mut() {
        // `dermdesk-bench images` wrote the serving process's figure under this key just before:
        // keep it under its own name; the key now means the whole app in the real window.
        if !object.contains_key("compare4_method") {
            if let Some(serving) = object.remove("compare4_rss_mb") {
                object.insert("compare4_serving_rss_mb".into(), serving);
            }
        }
    }
    if let (Some(object), Some(new)) = (json.as_object_mut(), figures.as_object()) {
        for (key, value) in new {
            object.insert(key.clone(), value.clone());
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // A quick run (`cargo xtask test`) proves the measurement runs, not the goal.
    let verdict = if std::env::var_os("DERMDESK_BENCH_QUICK").is_some() {
        "not judged (quick run)"
    } else if tree_mb <= GOAL_MB {
        "pass"
    } else {
        "FAIL"
    };
    let section = format!(
        "Run of {} (2 cores; debug build of the app, its image crates at opt-level 3 as in `Cargo.toml`). \
         The real window under Xvfb, 4-up, four synthetic 6000x4000 photos; each pane zoomed to 1:1 and \
         ×2.25 in turn ({} panes, {:.0} s, {} samples).\n\n\
         | measurement | peak | after sync, before opening | goal | result |\n\
         |---|---|---|---|---|\n\
         | P8 app + WebKit processes, summed RSS (`compare4_rss_mb`) | {:.0} MB | {:.0} MB | ≤ {GOAL_MB:.0} MB | {verdict} |\n\
         | app process alone, RSS (VmHWM {:.0} MB) | {:.0} MB | {:.0} MB | — | — |\n\
         | app + WebKit, summed PSS (shared pages counted once) | {:.0} MB | — | — | — |\n\n\
         At the tree's peak: {split}. After sync, before opening: {baseline_split}.\n",
        utc_now_text(),
        measured.panes_zoomed,
        measured.seconds,
        peaks.samples,
        tree_mb,
        mb(peaks.baseline_tree_rss_kb),
        mb(measured.app_hwm_kb),
        mb(peaks.app_rss_kb),
        mb(peaks.baseline_app_rss_kb),
        mb(peaks.tree_pss_kb),
    );
    eprintln!("{section}");
    if let Some(doc) = doc {
        let text = std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
        let (Some(begin), Some(end)) = (text.find(DOC_BEGIN), text.find(DOC_END)) else {
            return Err(format!("{} has no `{DOC_BEGIN}` … `{DOC_END}` section", doc.display()));
        };
        let updated = format!("{}{DOC_BEGIN}\n\n{section}\n{}", &text[..begin], &text[end..]);
        std::fs::write(doc, updated).map_err(|e| format!("{}: {e}", doc.display()))?;
    }
    Ok(())
}

/// "YYYY-MM-DD HH:MM UTC" from the system clock, without a date crate for one line.
fn utc_now_text() -> String {
    let output = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output();
    output
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
