//! A hostile service: a raw HTTP server in the test (so it can lie in ways axum would not let
//! it) answers the real client with oversized bodies, lying Content-Lengths, redirects to
//! another host, gzip bombs, deep nesting and out-of-bounds referrals. Every one is refused with
//! a clear error, within a bounded time, and nothing is followed or unpacked. Writes its figures
//! to `target/security/hostile_hub.json` (or `$DERMDESK_SECURITY_DIR`).

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dermdesk_core::client::{HubClient, MAX_JSON_BYTES};
use dermdesk_core::CoreError;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "hostile-test-device-token";

/// What the server does with each connection after reading the request head.
#[derive(Clone)]
enum Answer {
    /// Writes these bytes, then closes.
    Bytes(Arc<Vec<u8>>),
    /// A chunked body that never ends (until the client goes away).
    Endless,
}

struct Server {
    url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn serve(answer: Answer) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (counted, recorded) = (Arc::clone(&connections), Arc::clone(&requests));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            let (answer, recorded) = (answer.clone(), Arc::clone(&recorded));
            tokio::spawn(async move {
                let _ = answer_one(stream, answer, recorded).await;
            });
        }
    });
    Server { url, connections, requests }
}

async fn answer_one(
    mut stream: TcpStream,
    answer: Answer,
    recorded: Arc<std::sync::Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        if stream.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    recorded.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
    match answer {
        Answer::Bytes(bytes) => {
            stream.write_all(&bytes).await?;
            stream.shutdown().await?;
        }
        Answer::Endless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            let chunk = vec![b' '; 1024 * 1024];
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            // 1 GiB at most, then give up: the client must have stopped long before.
            for _ in 0..1024 {
                stream.write_all(&framed).await?;
            }
        }
    }
    Ok(())
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut bytes = format!("HTTP/1.1 {status}\r\nconnection: close\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    Answer::Bytes(Arc::new(bytes))
}

fn json_response(body: &[u8]) -> Answer {
    let length = body.len().to_string();
    response("200 OK", &[("content-type", "application/json"), ("content-length", &length)], body)
}

fn client(server: &Server) -> HubClient {
    HubClient::new(&server.url, Some(TOKEN.into())).unwrap()
}

/// A gzip stream that unpacks to `members` MiB of zeros (gzip members may be concatenated):
/// about 1 KiB on the wire per MiB unpacked.
fn gzip_bomb(members: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 1024 * 1024]).unwrap();
    let member = encoder.finish().unwrap();
    member.repeat(members)
}

/// One refused case: its name, the error, and how long the client took.
struct Case {
    name: &'static str,
    message: String,
    elapsed: Duration,
}

fn expect_refused(
    name: &'static str,
    result: Result<impl std::fmt::Debug, CoreError>,
    started: Instant,
) -> Case {
    let error = match result {
        Ok(value) => panic!("{name}: accepted {value:?}"),
        Err(error) => error,
    };
    let message = error.to_string();
    assert!(!message.contains(TOKEN), "{name}: the token is in the message");
    assert!(
        message.contains("Nothing local was changed") || message.contains("kept locally"),
        "{name}: the message does not say what was kept safe: {message}"
    );
    Case { name, message, elapsed: started.elapsed() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_are_capped_and_refused_with_a_clear_error() {
    let mut cases = Vec::new();

    // An honest Content-Length beyond the cap: refused before a byte of the body is read.
    let started = Instant::now();
    let huge = (MAX_JSON_BYTES + 1).to_string();
    let server = serve(response("200 OK", &[("content-length", &huge)], b"")).await;
    let case = expect_refused("content-length beyond the cap", client(&server).feed(None).await, started);
    assert!(case.message.contains("offered more than"), "{}", case.message);
    cases.push(case);

    // No length at all and a body that never ends: cut off at the cap.
    let started = Instant::now();
    let server = serve(Answer::Endless).await;
    let case = expect_refused("endless chunked body", client(&server).feed(None).await, started);
    assert!(case.message.contains("sent more than"), "{}", case.message);
    cases.push(case);

    // A Content-Length that promises more than is sent: a broken answer, nothing used.
    let started = Instant::now();
    let server = serve(response("200 OK", &[("content-length", "5000")], b"{\"changes\":[]")).await;
    let case =
        expect_refused("content-length longer than the body", client(&server).feed(None).await, started);
    assert!(matches!(case.message.as_str(), m if m.contains("could not be reached")), "{}", case.message);
    cases.push(case);

    // A Content-Length shorter than the body: only that many bytes are read, which is no answer.
    let started = Instant::now();
    let body = br#"{"changes":[],"next_cursor":"c1","has_more":false}"#;
    let server = serve(response("200 OK", &[("content-length", "12")], body)).await;
    let case =
        expect_refused("content-length shorter than the body", client(&server).feed(None).await, started);
    assert!(case.message.contains("unreadable answer"), "{}", case.message);
    cases.push(case);

    // Redirects to another host, temporary and permanent: never followed, so the other host
    // never sees the device token.
    let elsewhere = serve(json_response(br#"{"changes":[],"next_cursor":"c1","has_more":false}"#)).await;
    for (name, status) in [
        ("302 redirect to another host", "302 Found"),
        ("308 redirect to another host", "308 Permanent Redirect"),
    ] {
        let started = Instant::now();
        let location = format!("{}/v1/feed", elsewhere.url);
        let server = serve(response(status, &[("location", &location), ("content-length", "0")], b"")).await;
        let case = expect_refused(name, client(&server).feed(None).await, started);
        assert!(case.message.contains("redirect"), "{}", case.message);
        cases.push(case);
    }
    assert_eq!(elsewhere.connections.load(Ordering::SeqCst), 0, "a redirect was followed");

    // A gzip bomb: 1 GiB of zeros in about 1 MiB. Never unpacked.
    let started = Instant::now();
    let bomb = gzip_bomb(1024);
    assert!(bomb.len() < 2 * 1024 * 1024, "{}", bomb.len());
    let length = bomb.len().to_string();
    let server = serve(response(
        "200 OK",
        &[("content-type", "application/json"), ("content-encoding", "gzip"), ("content-length", &length)],
        &bomb,
    ))
    .await;
    let case = expect_refused("gzip bomb (1 GiB unpacked)", client(&server).feed(None).await, started);
    assert!(case.message.contains("compressed"), "{}", case.message);
    cases.push(case);
    let asked = server.requests.lock().unwrap().join("\n").to_ascii_lowercase();
    assert!(!asked.contains("accept-encoding"), "the client asked for compression: {asked}");

    // The same bomb as a photo download.
    let started = Instant::now();
    let content_id = "ab".repeat(32);
    let case = expect_refused(
        "gzip bomb as a photo",
        client(&server).photo(&content_id, 10 * 1024 * 1024, 0, None).await.map(|_| ()),
        started,
    );
    assert!(case.message.contains("compressed"), "{}", case.message);
    cases.push(case);

    // A photo body longer than the photo.
    let started = Instant::now();
    let server = serve(response("200 OK", &[("content-type", "image/jpeg")], &vec![0xffu8; 4096])).await;
    let result = async {
        let mut download = client(&server).photo(&content_id, 1000, 0, None).await?;
        while download.next_chunk().await?.is_some() {}
        Ok::<_, CoreError>(())
    }
    .await;
    let case = expect_refused("photo body longer than the photo", result, started);
    assert!(case.message.contains("more bytes than the photo has"), "{}", case.message);
    cases.push(case);

    // 100,000 levels of nesting: serde_json's recursion limit, not a stack overflow.
    let started = Instant::now();
    let mut nested = "[".repeat(100_000).into_bytes();
    nested.extend(std::iter::repeat_n(b']', 100_000));
    let server = serve(json_response(&nested)).await;
    let case = expect_refused("100,000 levels of nesting", client(&server).feed(None).await, started);
    assert!(case.message.contains("unreadable answer"), "{}", case.message);
    cases.push(case);
    // Typed structs refuse the shape at once; the limit itself must stay on (serde_json's
    // `unbounded_depth` feature off in this build) for any untyped read.
    let untyped = serde_json::from_slice::<serde_json::Value>(&nested).unwrap_err();
    assert!(untyped.to_string().contains("recursion limit"), "{untyped}");

    // A referral within the byte cap but beyond the protocol's bounds: 5,000 photos.
    let started = Instant::now();
    let server = serve(json_response(&feed_with_photos(5_000))).await;
    let case = expect_refused("a referral with 5,000 photos", client(&server).feed(None).await, started);
    assert!(case.message.contains("photos is longer than 64"), "{}", case.message);
    cases.push(case);

    // An error body that is itself oversized.
    let started = Instant::now();
    let server = serve(response("400 Bad Request", &[("content-length", "100000000")], b"")).await;
    let case = expect_refused("oversized error body", client(&server).feed(None).await, started);
    cases.push(case);

    for case in &cases {
        eprintln!("{:<40} {:>8.1?}  {}", case.name, case.elapsed, case.message);
        assert!(case.elapsed < Duration::from_secs(10), "{}: took {:?}", case.name, case.elapsed);
    }
    write_figures(&cases);
}

/// A feed page with one referral carrying `photos` photos (valid JSON, under the byte cap).
fn feed_with_photos(photos: usize) -> Vec<u8> {
    let photo = serde_json::json!({
        "content_id": "ab".repeat(32), "size": 1000, "width": 40, "height": 30,
        "media_type": "image/jpeg", "captured_at": "2026-11-20T09:30:00Z", "view": "close_up",
        "body_site": "left forearm", "source": "gp_practice"
    });
    let referral = serde_json::json!({
        "id": "R-1", "version": 1,
        "patient": {"name": "Synthetic Patient", "nhs_number": "9990000018", "date_of_birth": "1970-01-01", "sex": "female"},
        "practice": {"ods_code": "Y00001", "name": "Synthetic Practice", "nation": "england"},
        "referrer": {"name": "Dr Synthetic", "role": "GP"},
        "received_at": "2026-11-20T09:30:00Z", "urgency": "routine",
        "clinical": {"question": "q", "history": "h", "duration": "d", "medications": "m"},
        "consent": {"given": true, "recorded_at": null, "recorded_by": null},
        "photos": vec![photo; photos],
    });
    let page = serde_json::json!({
        "changes": [{"type": "upsert", "referral": referral}],
        "next_cursor": "c1", "has_more": false,
    });
    let bytes = serde_json::to_vec(&page).unwrap();
    assert!((bytes.len() as u64) < MAX_JSON_BYTES);
    bytes
}

fn write_figures(cases: &[Case]) {
    let dir = security_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let report = serde_json::json!({
        "hostile_responses_total": cases.len(),
        "hostile_responses_refused": cases.len(),
        "cases": cases.iter().map(|case| serde_json::json!({
            "case": case.name,
            "refused": true,
            "millis": case.elapsed.as_millis() as u64,
            "message": case.message,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(dir.join("hostile_hub.json"), serde_json::to_vec_pretty(&report).unwrap()).unwrap();
}

/// Where security figures go: `$DERMDESK_SECURITY_DIR`, else the workspace's target/security.
fn security_dir() -> std::path::PathBuf {
    std::env::var_os("DERMDESK_SECURITY_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/security"))
}
