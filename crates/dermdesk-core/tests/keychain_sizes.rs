//! Every keychain entry Derm Desk writes fits one Windows Credential Manager entry
//! ([`KEYCHAIN_ENTRY_MAX`], 2,560 bytes) with at least [`MARGIN`] to spare. Each entry is made at
//! its largest through the code that writes it in the app, into an in-memory keychain whose
//! entries are then measured as stored (sealed where the app seals them):
//!
//! | entry | written by | largest |
//! |---|---|---|
//! | `cache-key-wrapped` | `Vault::choose_passphrase` | fixed: magic, Argon2id parameters, salt, nonce, sealed 32-byte key |
//! | `unlock-failures` | `Vault::unlock` (a wrong passphrase) | "9": the 10th wrong one wipes the device instead |
//! | `cache-key` | `Desk::open` (tests and tools; the app removes it when the passphrase is chosen) | 32 bytes |
//! | `device-signing-key` | `Desk::enrol`, sealed (`SealedStore`) | a 32-byte Ed25519 seed, sealed |
//! | `device-signing-key-next` | `Desk::rotate_key`, sealed, kept while the service has not confirmed | the same |
//! | `device-token` | `Desk::enrol`, sealed | the longest token the protocol accepts (`MAX_DEVICE_TOKEN_BYTES`), sealed |
//!
//! The device token is the only entry whose size the service decides: a raw HTTP server in the
//! test answers the enrolment with a token of exactly the protocol's bound, and one byte more is
//! refused before anything is kept. Raise that bound (or add an entry the walk below writes)
//! past the margin and this test fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dermdesk_core::lock::{KdfParams, Vault, MAX_FAILED_UNLOCKS};
use dermdesk_core::secrets::{
    profile_for, MemorySecretStore, SecretStore as _, CACHE_KEY, CACHE_KEY_WRAPPED, DEVICE_SIGNING_KEY,
    DEVICE_SIGNING_KEY_NEXT, DEVICE_TOKEN, KEYCHAIN_ENTRY_MAX, UNLOCK_FAILURES,
};
use dermdesk_core::{CoreError, Desk, DeskConfig};
use dermdesk_protocol::limits::MAX_DEVICE_TOKEN_BYTES;
use dermdesk_protocol::signature::{decode_public_key, key_id};
use dermdesk_protocol::{Consultant, EnrolRequest, EnrolResponse};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Room every entry must leave below the limit: a tenth of it, for an entry that grows a little
/// (a longer magic, stronger KDF parameters stored beside the key) without reaching the edge.
const MARGIN: usize = KEYCHAIN_ENTRY_MAX / 10;

/// Windows' limit on the account name (`CRED_MAX_USERNAME_LENGTH`, wincred.h), which keyring
/// builds from our profile and entry name.
const ACCOUNT_NAME_MAX: usize = 513;

const PASSPHRASE: &str = "a consultant's passphrase, long as they like";

/// A service that enrols any code and hands out a device token of `token_bytes` bytes.
async fn enrolling_service(token_bytes: usize) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            let body = loop {
                let read = stream.read(&mut buffer).await.unwrap();
                assert!(read > 0, "the client closed the connection mid-request");
                request.extend_from_slice(&buffer[..read]);
                let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().unwrap());
                if request.len() >= end + 4 + length {
                    break request[end + 4..end + 4 + length].to_vec();
                }
            };
            let enrol: EnrolRequest = serde_json::from_slice(&body).unwrap();
            let public_key = decode_public_key(&enrol.public_key).unwrap();
            let answer = EnrolResponse {
                device_id: "device-1".into(),
                device_token: "t".repeat(token_bytes),
                key_id: key_id(&public_key),
                consultant: Consultant { id: "consultant-1".into(), display_name: "Dr Synthetic".into() },
                hub_key: None,
            };
            let json = serde_json::to_vec(&answer).unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                json.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(&json).await.unwrap();
            stream.shutdown().await.unwrap();
        }
    });
    (url, server)
}

fn config(dir: &std::path::Path) -> DeskConfig {
    DeskConfig { data_dir: dir.to_owned(), device_name: "Derm Desk on a test computer".into() }
}

/// Every entry the app writes, at its largest, with its stored size.
async fn largest_entries() -> Vec<(String, usize)> {
    let home = tempfile::tempdir().unwrap();
    let data_dir = home.path().join("desk");
    let keychain = Arc::new(MemorySecretStore::default());
    let mut now = Instant::now();

    // The passphrase: the sealed cache key, then wrong attempts up to the last one before the wipe.
    let vault = Vault::new(&data_dir, keychain.clone(), KdfParams::for_tests(), now).unwrap();
    let key = vault.choose_passphrase(PASSPHRASE).unwrap();
    for _ in 1..MAX_FAILED_UNLOCKS {
        now += Duration::from_secs(3600);
        let wrong = vault.unlock("not the passphrase at all", now).unwrap_err();
        assert!(matches!(wrong, CoreError::WrongPassphrase { .. }), "{wrong}");
    }

    // Enrolment with the longest device token the protocol lets through, then a key
    // replacement the service never confirms (it has gone away), so the spare key stays.
    let desk = Desk::open_with_key(config(&data_dir), keychain.clone(), &key).unwrap();
    let (url, server) = enrolling_service(MAX_DEVICE_TOKEN_BYTES).await;
    desk.enrol(&url, "K7QH-2M9D-XR4P").await.unwrap();
    server.abort();
    let _ = server.await;
    let unconfirmed = desk.rotate_key().await.unwrap_err();
    assert!(matches!(unconfirmed, CoreError::Offline(_)), "{unconfirmed}");
    drop(desk);

    let mut entries: Vec<(String, usize)> = keychain
        .names()
        .into_iter()
        .map(|name| {
            let size = keychain.get(&name).unwrap().unwrap().len();
            (name, size)
        })
        .collect();

    // The unsealed key of `Desk::open` (tests and tools), in a keychain of its own.
    let tools = Arc::new(MemorySecretStore::default());
    drop(Desk::open(config(&home.path().join("tools")), tools.clone()).unwrap());
    entries.push((CACHE_KEY.to_owned(), tools.get(CACHE_KEY).unwrap().unwrap().len()));
    entries
}

#[tokio::test]
async fn every_keychain_entry_fits_windows_credential_manager_with_room_to_spare() {
    let entries = largest_entries().await;
    let mut names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    let mut expected = vec![
        CACHE_KEY,
        CACHE_KEY_WRAPPED,
        DEVICE_SIGNING_KEY,
        DEVICE_SIGNING_KEY_NEXT,
        DEVICE_TOKEN,
        UNLOCK_FAILURES,
    ];
    expected.sort_unstable();
    assert_eq!(names, expected, "an entry was added or lost: size it here and in the table above");

    let profile = profile_for(std::path::Path::new("/a/long/path/to/the/desk/data/directory"));
    let mut report = String::new();
    for (name, size) in &entries {
        report.push_str(&format!("{name}: {size} bytes\n"));
        assert!(
            size + MARGIN <= KEYCHAIN_ENTRY_MAX,
            "keychain entry {name} is {size} bytes: more than {KEYCHAIN_ENTRY_MAX} - {MARGIN} (the \
             Windows Credential Manager limit less the margin)"
        );
        let account = format!("{profile}/{name}");
        assert!(account.len() <= ACCOUNT_NAME_MAX, "{account} is too long an account name for Windows");
    }
    eprintln!("{report}");
    let token = entries.iter().find(|(name, _)| name == DEVICE_TOKEN).unwrap().1;
    assert!(token > MAX_DEVICE_TOKEN_BYTES, "the token is stored sealed, so larger than itself");
}

#[tokio::test]
async fn a_device_token_longer_than_the_protocol_allows_is_refused_before_it_is_kept() {
    let home = tempfile::tempdir().unwrap();
    let keychain = Arc::new(MemorySecretStore::default());
    let desk = Desk::open(config(home.path()), keychain.clone()).unwrap();
    let (url, server) = enrolling_service(MAX_DEVICE_TOKEN_BYTES + 1).await;
    let refused = desk.enrol(&url, "K7QH-2M9D-XR4P").await.unwrap_err();
    server.abort();
    assert!(refused.to_string().contains("device token"), "{refused}");
    assert!(keychain.get(DEVICE_TOKEN).unwrap().is_none(), "no token was kept");
    assert!(desk.enrolment().unwrap().is_none(), "the desk is not enrolled");
}
