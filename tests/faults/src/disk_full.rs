//! The full-disk scenario: the client's data directory on a small tmpfs (Linux, as root), filled
//! with a filler file while the client downloads photos and while the consultant signs. The
//! core must refuse with `DiskFull` and its plain message, lose nothing, leave the cache
//! intact, and carry on once space returns.
//!
//! This runs the core library in-process (the steps are deterministic; nothing is killed).
//! The secret store is kept outside the tmpfs: it stands in for the OS keychain, which does not
//! live on the full disk.
//!
//! SQLite's write-ahead log can hide a full disk: a WAL file keeps its size after a
//! checkpoint, so a small transaction may reuse space it already owns and succeed. Each part
//! therefore starts from a freshly reopened cache (closing the last connection checkpoints the
//! WAL and deletes it), so the write under test needs new space. What the harness saw is
//! recorded step by step in the report either way.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use dermdesk_core::plan::OutboxState;
use dermdesk_core::verify::verify_photo;
use dermdesk_core::views::ReferralStatus;
use dermdesk_core::{CoreError, Desk, DeskConfig, ErrorKind};
use dermdesk_faults::secrets::FileSecretStore;
use dermdesk_protocol::{Outcome, OutcomeKind, Referral};
use rand::rngs::StdRng;

use crate::report::DiskFullReport;
use crate::world::World;

/// Big enough for the cache and a few photos, small enough to fill in a moment.
const TMPFS_SIZE: &str = "24m";
/// Space left when the photos arrive: room for a feed page, not for a large photo.
const HEADROOM_FOR_FEED: u64 = 256 * 1024;

/// A tmpfs mounted for the scenario; unmounted when dropped, however the scenario ended.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path) -> Result<Tmpfs, String> {
        if !cfg!(target_os = "linux") {
            return Err("needs Linux (tmpfs)".into());
        }
        std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE},mode=0700"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs { path: path.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Something still has a file open there; detach it so the run never leaves a mount.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

pub async fn run(world: &mut World, work_dir: &Path, rng: &mut StdRng) -> DiskFullReport {
    let mut report = DiskFullReport::default();
    let base = work_dir.join("disk-full");
    let tmpfs = match Tmpfs::mount(&base.join("mnt")) {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            report.status = "skipped".into();
            report.reason = Some(reason);
            return report;
        }
    };
    let result = scenario(world, &base, &tmpfs.path, rng, &mut report.steps).await;
    drop(tmpfs);
    match result {
        Ok(()) => report.status = "passed".into(),
        Err(reason) => {
            report.steps.push(format!("FAILED: {reason}"));
            report.status = "failed".into();
            report.reason = Some(reason);
        }
    }
    report
}

fn outcome() -> Outcome {
    Outcome {
        // Allowed by every governance rule (no consent, two-week wait, suspected cancer),
        // so it can answer any synthetic referral.
        kind: OutcomeKind::RequestMoreInformation,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis (synthetic disk-full case)".into(),
        plan: "Benign. Reassure. Signed by the fault harness.".into(),
        governance_reason: Some("Synthetic test referral: answered by request whatever its urgency.".into()),
        ..Outcome::default_extras()
    }
}

/// Free bytes on the file system holding `path`, as `df` reports them (for the step log).
fn free_bytes(path: &Path) -> String {
    Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().nth(1).map(|line| line.trim().to_owned()))
        .unwrap_or_else(|| "?".into())
}

/// Fills the file system with `filler` until it refuses, then gives back `headroom` bytes.
fn fill(filler: &Path, headroom: u64) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(filler)
        .map_err(|e| format!("filler: {e}"))?;
    for piece in [1024 * 1024, 4096, 1] {
        let block = vec![0xA5u8; piece];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
                Err(error) => return Err(format!("filling the disk: {error}")),
            }
        }
    }
    let length = file.metadata().map_err(|e| e.to_string())?.len();
    file.set_len(length.saturating_sub(headroom)).map_err(|e| format!("filler: {e}"))?;
    file.sync_all().map_err(|e| format!("filler: {e}"))
}

fn expect_disk_full(what: &str, result: Result<impl std::fmt::Debug, CoreError>) -> Result<String, String> {
    match result {
        Err(error) if error.kind() == ErrorKind::DiskFull => Ok(format!("{what}: DiskFull: {error}")),
        Err(error) => Err(format!("{what}: expected DiskFull, got {:?}: {error}", error.kind())),
        Ok(value) => Err(format!("{what}: succeeded on a full disk ({value:?})")),
    }
}

fn core(what: &'static str) -> impl Fn(CoreError) -> String {
    move |error| format!("{what}: {error}")
}

/// Every photo the cache shows verifies against its referral; returns how many.
fn photos_intact(desk: &Desk, referrals: &[Referral]) -> Result<usize, String> {
    let mut visible = 0;
    for meta in referrals.iter().flat_map(|r| &r.photos) {
        if let Some((_, bytes)) = desk.photo(&meta.content_id).map_err(core("reading a photo"))? {
            verify_photo(meta, &bytes).map_err(|problem| format!("photo {}: {problem}", meta.content_id))?;
            visible += 1;
        }
    }
    Ok(visible)
}

fn integrity(desk: &Desk) -> Result<(), String> {
    match desk.integrity_check().map_err(core("integrity_check"))?.as_str() {
        "ok" => Ok(()),
        other => Err(format!("integrity_check: {other}")),
    }
}

async fn scenario(
    world: &mut World,
    base: &Path,
    mount: &Path,
    rng: &mut StdRng,
    steps: &mut Vec<String>,
) -> Result<(), String> {
    let secrets = Arc::new(FileSecretStore::new(base.join("secrets")));
    let config = DeskConfig { data_dir: mount.join("desk"), device_name: "disk-full harness".into() };
    let open =
        || Desk::open(config.clone(), secrets.clone()).map(Arc::new).map_err(core("opening the cache"));
    let filler = mount.join("filler");
    let consultant = world.new_consultant("Dr Disk Full (synthetic)")?;
    let code = world.enrolment_code(&consultant.id)?;
    let mut referrals = Vec::new();
    for _ in 0..4 {
        referrals.push(world.add_referral(rng, &consultant.id, false)?);
    }

    // 1. A normal start: enrol, sync, one outcome delivered, one queued, one referral open.
    let desk = open()?;
    desk.enrol(&world.url, &code).await.map_err(core("enrolling"))?;
    let client = desk.client().map_err(core("client"))?;
    desk.pull_feed(&client, |_| {}).await.map_err(core("feed"))?;
    let summary = desk
        .fetch_photos(
            &client,
            desk.missing_photos().map_err(core("missing"))?,
            3,
            Arc::new(|_| {}),
            |_, _| {},
        )
        .await
        .map_err(core("photos"))?;
    let sign = |desk: &Desk, referral: &Referral| {
        let version = desk.open_referral(&referral.id)?.referral.version;
        desk.sign_outcome(&referral.id, version, outcome())
    };
    let delivered = sign(&desk, &referrals[0]).map_err(core("signing"))?;
    desk.push_outbox(&client).await.map_err(core("push"))?;
    let queued = sign(&desk, &referrals[1]).map_err(core("signing"))?;
    let reviewing =
        desk.open_referral(&referrals[2].id).map_err(core("opening a referral"))?.referral.version;
    steps.push(format!(
        "synced {} photos; outcome {} delivered, {} queued; free space {} bytes",
        summary.stored,
        delivered.outcome_id,
        queued.outcome_id,
        free_bytes(mount)
    ));

    // 2. Photos arrive while the disk is nearly full.
    drop(desk);
    let desk = open()?;
    let client = desk.client().map_err(core("client"))?;
    referrals.push(world.add_referral(rng, &consultant.id, true)?);
    referrals.push(world.add_referral(rng, &consultant.id, false)?);
    fill(&filler, HEADROOM_FOR_FEED)?;
    steps.push(format!("filled the tmpfs, leaving {} bytes", free_bytes(mount)));
    desk.pull_feed(&client, |_| {}).await.map_err(core("feed on a nearly full disk"))?;
    let missing = desk.missing_photos().map_err(core("missing"))?;
    let wanted = missing.len();
    let result = desk.fetch_photos(&client, missing, 3, Arc::new(|_| {}), |_, _| {}).await;
    steps.push(expect_disk_full(&format!("downloading {wanted} photos"), result)?);
    integrity(&desk)?;
    let visible = photos_intact(&desk, &referrals)?;
    let still_missing = desk.missing_photos().map_err(core("missing"))?.len();
    if still_missing == 0 {
        return Err("every photo was stored although the download reported a full disk".into());
    }
    let states = outbox_states(&desk, &referrals[..2])?;
    if states != [Some(OutboxState::Sent), Some(OutboxState::Queued)] {
        return Err(format!("earlier outcomes changed on a full disk: {states:?}"));
    }
    steps.push(format!(
        "after: integrity ok, {visible} visible photos verify, {still_missing} still missing, earlier outcomes sent + queued"
    ));

    // 3. The consultant signs while the disk is completely full.
    std::fs::remove_file(&filler).map_err(|e| format!("removing the filler: {e}"))?;
    drop(desk);
    let desk = open()?;
    fill(&filler, 0)?;
    steps.push(format!("filled the tmpfs completely ({} bytes free)", free_bytes(mount)));
    let result = desk.sign_outcome(&referrals[2].id, reviewing, outcome());
    steps.push(expect_disk_full("signing", result.map(|view| view.outcome_id))?);
    integrity(&desk)?;
    if desk.signed_outcome_for(&referrals[2].id).map_err(core("outbox"))?.is_some() {
        return Err("an outcome was queued although signing reported a full disk".into());
    }
    let waiting = desk.outbox_waiting().map_err(core("outbox"))?;
    if waiting != 1 {
        return Err(format!("{waiting} outcomes waiting after a refused signing; 1 expected"));
    }
    steps
        .push("after: integrity ok, nothing queued for the referral, the earlier queued outcome kept".into());

    // 4. Space returns: everything carries on, and the outcomes reach the hub once each.
    std::fs::remove_file(&filler).map_err(|e| format!("removing the filler: {e}"))?;
    let missing = desk.missing_photos().map_err(core("missing"))?;
    let summary = desk
        .fetch_photos(&client, missing, 3, Arc::new(|_| {}), |_, _| {})
        .await
        .map_err(core("photos after space returned"))?;
    let signed = desk
        .sign_outcome(&referrals[2].id, reviewing, outcome())
        .map_err(core("signing after space returned"))?;
    desk.push_outbox(&client).await.map_err(core("push after space returned"))?;
    integrity(&desk)?;
    drop(desk);
    let desk = open()?;
    integrity(&desk)?;
    let visible = photos_intact(&desk, &referrals)?;
    if !desk.missing_photos().map_err(core("missing"))?.is_empty() {
        return Err("photos still missing after space returned".into());
    }
    for (referral, outcome_id) in [
        (&referrals[0], &delivered.outcome_id),
        (&referrals[1], &queued.outcome_id),
        (&referrals[2], &signed.outcome_id),
    ] {
        let on_hub = world.hub.outcomes(&referral.id).map_err(|e| e.to_string())?;
        if on_hub.len() != 1 || &on_hub[0].outcome_id != outcome_id {
            return Err(format!(
                "referral {}: the hub holds {} outcomes, expected exactly {outcome_id}",
                referral.id,
                on_hub.len()
            ));
        }
    }
    steps.push(format!(
        "space returned: {} more photos stored ({visible} visible, all verify), outcome {} signed, 3 outcomes on the hub exactly once, integrity ok after reopening",
        summary.stored, signed.outcome_id
    ));
    Ok(())
}

fn outbox_states(desk: &Desk, referrals: &[Referral]) -> Result<Vec<Option<OutboxState>>, String> {
    // The worklist only reads; opening a referral would write (it marks it opened).
    let worklist = desk.worklist().map_err(core("worklist"))?;
    Ok(referrals
        .iter()
        .map(|referral| {
            let row = worklist.iter().find(|row| row.referral_id == referral.id)?;
            match row.status {
                ReferralStatus::Sent => Some(OutboxState::Sent),
                ReferralStatus::Queued => Some(OutboxState::Queued),
                ReferralStatus::Conflict => Some(OutboxState::Conflict),
                ReferralStatus::Rejected => Some(OutboxState::Rejected),
                ReferralStatus::New | ReferralStatus::Opened | ReferralStatus::Draft => None,
            }
        })
        .collect())
}
