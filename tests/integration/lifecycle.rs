//! The desk's life cycle against the real hub: connect (every failure retryable, nothing
//! half-made left), choose the passphrase, sign only with a recent passphrase, lock, sign out
//! and revocation back to the Connect screen, an interrupted set-up erased at the next start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dermdesk_core::clock::{test_clock, FixedClock};
use dermdesk_core::connect::DeploymentConfig;
use dermdesk_core::engine::EngineSettings;
use dermdesk_core::life::{Ended, Stage, StageName};
use dermdesk_core::lifecycle::{LifeEvent, LifeSettings, Lifecycle};
use dermdesk_core::lock::{KdfParams, LockPolicy};
use dermdesk_core::secrets::{MemorySecretStore, SecretStore};
use dermdesk_core::{CoreError, DeskConfig, ErrorKind};
use dermdesk_protocol::{Outcome, OutcomeKind};
use tempfile::TempDir;

use crate::support::TestHub;

const PASSPHRASE: &str = "integration passphrase";

struct World {
    dir: TempDir,
    secrets: Arc<MemorySecretStore>,
    stages: Arc<Mutex<Vec<StageName>>>,
}

impl World {
    fn new() -> World {
        World { dir: tempfile::tempdir().unwrap(), secrets: Arc::default(), stages: Arc::default() }
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("desk")
    }

    fn life(&self, policy: LockPolicy, clock: dermdesk_core::clock::SharedClock) -> Arc<Lifecycle> {
        let settings = LifeSettings {
            desk: DeskConfig { data_dir: self.data_dir(), device_name: "lifecycle test".into() },
            secrets: self.secrets.clone(),
            kdf: KdfParams::for_tests(),
            clock,
            policy,
            engine: EngineSettings { interval: Duration::from_secs(3600), ..EngineSettings::default() },
            deployment: DeploymentConfig::default(),
        };
        let stages = Arc::clone(&self.stages);
        Lifecycle::new(settings, move |event| {
            if let LifeEvent::Stage(view) = event {
                stages.lock().unwrap().push(view.state);
            }
        })
    }

    /// Files in the data folder and entries in the keychain: what a failed connect must not leave.
    fn leftovers(&self) -> (Vec<String>, usize) {
        let files = std::fs::read_dir(self.data_dir())
            .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let names = dermdesk_core::secrets::ALL_ENTRIES;
        let entries = names.iter().filter(|name| self.secrets.get(name).unwrap().is_some()).count();
        (files, entries)
    }
}

fn policy() -> LockPolicy {
    LockPolicy::default()
}

fn outcome() -> Outcome {
    Outcome {
        kind: OutcomeKind::RequestMoreInformation,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Benign. Reassure; no treatment needed.".into(),
        governance_reason: Some("Synthetic test referral: answered by request whatever its urgency.".into()),
        ..Outcome::default_extras()
    }
}

async fn synced(life: &Lifecycle) -> Arc<dermdesk_core::Desk> {
    let desk = life.desk().unwrap();
    let client = desk.client().unwrap();
    desk.pull_feed(&client, |_| {}).await.unwrap();
    desk
}

#[tokio::test]
async fn a_wrong_code_then_the_right_one_connects_with_nothing_left_from_the_first() {
    let hub = TestHub::start().await;
    let world = World::new();
    let life = world.life(policy(), test_clock());
    life.prepare().await;
    assert_eq!(life.stage(), Stage::Connect { ended: None });

    // Well-formed but unknown: the service refuses it; the screen is usable again.
    let error = life.connect(&hub.url, "2222-3333-4444").await.unwrap_err();
    assert!(error.to_string().contains("unknown or has already been used"), "{error}");
    assert_eq!(life.stage(), Stage::Connect { ended: None });
    assert_eq!(world.leftovers(), (vec![], 0), "a failed connect leaves no file and no keychain entry");

    // Not a code at all: refused before anything is sent.
    let error = life.connect(&hub.url, "K7QH-2M0D").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadEnrolmentCode);

    // The right one, typed in lower case with spaces.
    let code = hub.seed.enrolment_code.to_lowercase().replace('-', " ");
    life.connect(&hub.url, &code).await.unwrap();
    assert_eq!(life.stage(), Stage::ChoosePassphrase);
    assert!(life.desk().is_err(), "no patient data before the passphrase");
    let error = life.choose_passphrase("short").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::WeakPassphrase);
    assert_eq!(life.stage(), Stage::ChoosePassphrase, "a weak passphrase can be chosen again");
    life.choose_passphrase(PASSPHRASE).await.unwrap();
    assert!(life.stage().is_open());
    assert!(!synced(&life).await.worklist().unwrap().is_empty());
    let stages = world.stages.lock().unwrap().clone();
    assert_eq!(
        stages,
        [
            StageName::Connect,
            StageName::Connecting,
            StageName::Connect,
            StageName::Connecting,
            StageName::ChoosePassphrase,
            StageName::Unlocked
        ]
    );
}

#[tokio::test]
async fn unreachable_not_ours_and_a_wrong_clock_each_say_what_to_do() {
    let hub = TestHub::start().await;
    let world = World::new();
    let life = world.life(policy(), test_clock());
    life.prepare().await;

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let error = life.connect(&closed_url, &hub.seed.enrolment_code).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServiceUnreachable);
    assert!(!error.to_string().contains("sent later"), "nothing exists yet to be sent later: {error}");

    // Something answers, but it is not a Derm Desk service.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let body = "<html>an intranet page</html>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let error = life.connect(&other_url, &hub.seed.enrolment_code).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotADermDeskService);

    // Plain http to another computer: refused before any request.
    let error = life.connect("http://desk.example.nhs.uk", &hub.seed.enrolment_code).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadServiceUrl);
    assert!(error.to_string().contains("only https"), "{error}");

    // This computer's clock is an hour ahead of the service's.
    let ahead = Arc::new(FixedClock::new(test_clock().now() + chrono::Duration::hours(1)));
    let skewed = World::new();
    let skewed_life = skewed.life(policy(), ahead);
    skewed_life.prepare().await;
    let error = skewed_life.connect(&hub.url, &hub.seed.enrolment_code).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ClockSkew);
    assert!(error.to_string().contains("60 minutes ahead of"), "{error}");

    // None of that spent the code: it still connects.
    assert_eq!(world.leftovers(), (vec![], 0));
    life.connect(&hub.url, &hub.seed.enrolment_code).await.unwrap();
    assert_eq!(life.stage(), Stage::ChoosePassphrase);
}

#[tokio::test]
async fn signing_asks_the_core_for_a_recent_passphrase() {
    let hub = TestHub::start().await;
    let world = World::new();
    let strict = LockPolicy { reauth_before_signing: Duration::ZERO, ..LockPolicy::default() };
    let life = world.life(strict, test_clock());
    life.prepare().await;
    life.connect(&hub.url, &hub.seed.enrolment_code).await.unwrap();
    life.choose_passphrase(PASSPHRASE).await.unwrap();
    let desk = synced(&life).await;
    let row = desk.worklist().unwrap()[0].clone();
    let version = desk.open_referral(&row.referral_id).unwrap().referral.version;

    // The desk itself refuses: the shell has no say.
    let error = desk.sign_outcome(&row.referral_id, version, outcome()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(life.stage().name(), StageName::Recheck);
    assert_eq!(desk.unsent_outcomes().unwrap(), 0, "nothing was signed");
    // A wrong passphrase is not a re-check.
    assert_eq!(
        life.reauthenticate("not the passphrase").await.unwrap_err().kind(),
        ErrorKind::WrongPassphrase
    );
    assert_eq!(life.stage().name(), StageName::Recheck);

    // With a policy that allows a minute, the re-check lets exactly the next signature through.
    let world = World::new();
    let minute = LockPolicy { reauth_before_signing: Duration::from_secs(60), ..LockPolicy::default() };
    let life = world.life(minute, test_clock());
    life.prepare().await;
    let second_code = hub.hub.create_enrolment_code(&hub.seed.consultant.id).unwrap();
    life.connect(&hub.url, &second_code).await.unwrap();
    life.choose_passphrase(PASSPHRASE).await.unwrap();
    let desk = synced(&life).await;
    desk.sign_outcome(&row.referral_id, version, outcome()).unwrap();
    assert_eq!(desk.unsent_outcomes().unwrap(), 1);

    // Locked: the desk is closed and nothing can be signed through the old handle's life.
    drop(desk);
    life.lock(None).await.unwrap();
    assert_eq!(life.stage(), Stage::Locked { idle: None });
    assert!(life.desk().is_err());
    assert_eq!(life.unlock("wrong passphrase!").await.unwrap_err().kind(), ErrorKind::WrongPassphrase);
    // Wrong attempts wait a moment before the next (lock.rs).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    life.unlock(PASSPHRASE).await.unwrap();
    assert!(life.stage().is_open());
}

#[tokio::test]
async fn sign_out_and_revocation_return_to_connect_and_erase_the_desk() {
    let hub = TestHub::start().await;
    let world = World::new();
    let life = world.life(policy(), test_clock());
    life.prepare().await;
    life.connect(&hub.url, &hub.seed.enrolment_code).await.unwrap();
    life.choose_passphrase(PASSPHRASE).await.unwrap();
    synced(&life).await;

    life.sign_out(false).await.unwrap();
    assert_eq!(life.stage(), Stage::Connect { ended: Some(Ended::SignedOut { unsent: 0 }) });
    assert_eq!(world.leftovers(), (vec![], 0), "signing out erases the cache and the keys");

    // Back in with a new code, on the same lifecycle (no restart).
    let code = hub.hub.create_enrolment_code(&hub.seed.consultant.id).unwrap();
    life.connect(&hub.url, &code).await.unwrap();
    life.choose_passphrase(PASSPHRASE).await.unwrap();
    let desk = synced(&life).await;
    let device_id = desk.enrolment().unwrap().unwrap().device_id;
    drop(desk);

    // The service revokes the device: the next sync finds out and the desk is wiped.
    hub.hub.revoke_device(&device_id).unwrap();
    life.sync_now().unwrap();
    let started = std::time::Instant::now();
    while life.stage() != (Stage::Connect { ended: Some(Ended::Revoked) }) {
        assert!(started.elapsed() < Duration::from_secs(30), "still {:?}", life.stage());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(life.view().notice.unwrap().contains("no longer accepts this computer"));
    assert_eq!(world.leftovers(), (vec![], 0));
}

#[tokio::test]
async fn a_set_up_interrupted_before_the_passphrase_is_erased_at_the_next_start() {
    let hub = TestHub::start().await;
    let world = World::new();
    let life = world.life(policy(), test_clock());
    life.prepare().await;
    life.connect(&hub.url, &hub.seed.enrolment_code).await.unwrap();
    assert_eq!(life.stage(), Stage::ChoosePassphrase);
    // The app is closed here (the cache key was only in memory).
    drop(life);

    let life = world.life(policy(), test_clock());
    life.prepare().await;
    assert_eq!(life.stage(), Stage::Connect { ended: Some(Ended::SetupInterrupted) });
    assert!(life.view().notice.unwrap().contains("ask your service for a new one"));
    assert_eq!(world.leftovers(), (vec![], 0));
    // The spent code is refused; a new one works.
    assert!(life.connect(&hub.url, &hub.seed.enrolment_code).await.is_err());
    let code = hub.hub.create_enrolment_code(&hub.seed.consultant.id).unwrap();
    life.connect(&hub.url, &code).await.unwrap();
    life.choose_passphrase(PASSPHRASE).await.unwrap();
    assert!(life.stage().is_open());
}

#[tokio::test]
async fn nothing_but_connecting_works_before_a_desk_is_set_up() {
    let world = World::new();
    let life = world.life(policy(), test_clock());
    assert_eq!(life.desk().err().unwrap().kind(), ErrorKind::NotNow, "still starting");
    life.prepare().await;
    for error in [
        life.unlock(PASSPHRASE).await.unwrap_err(),
        life.choose_passphrase(PASSPHRASE).await.unwrap_err(),
        life.desk().err().unwrap(),
        life.sync_now().unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::NotNow, "{error}");
        assert!(error.to_string().contains("not connected to a service"), "{error}");
    }
    let _: &CoreError = &life.sign_out(true).await.unwrap_err();
}
