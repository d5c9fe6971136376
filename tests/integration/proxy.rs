//! A loopback TCP proxy in front of the hub that records what the client asks and can cut a
//! response short: the network misbehaving in one precise, repeatable way.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Shared {
    /// Every request head the client sent (method, path, headers), in order.
    requests: Vec<String>,
    /// Cut the next photo response after this many bytes (status line and headers included).
    cut_next_photo_after: Option<usize>,
    /// While set, every new connection is closed at once (the service is unreachable).
    down: bool,
}

#[derive(Clone)]
pub struct Proxy {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Shared::default()));
        let proxy = Proxy { url, shared: Arc::clone(&shared) };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.lock().unwrap().down {
                    drop(client);
                    continue;
                }
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(relay(client, server, Arc::clone(&shared)));
            }
        });
        proxy
    }

    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().unwrap().requests.clone()
    }

    pub fn clear(&self) {
        self.shared.lock().unwrap().requests.clear();
    }

    pub fn set_down(&self, down: bool) {
        self.shared.lock().unwrap().down = down;
    }

    pub fn cut_next_photo_after(&self, bytes: usize) {
        self.shared.lock().unwrap().cut_next_photo_after = Some(bytes);
    }
}

/// One connection. Requests are small and answered one at a time (HTTP/1.1 without
/// pipelining), so "the last request head seen" says what the bytes coming back answer.
async fn relay(mut client: TcpStream, mut server: TcpStream, shared: Arc<Mutex<Shared>>) {
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let budget: Mutex<Option<usize>> = Mutex::new(None);
    let upstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            if let Some(head) = text.split("\r\n\r\n").next().filter(|h| h.contains(" HTTP/1.1")) {
                let mut shared = shared.lock().unwrap();
                if head.starts_with("GET /v1/photos/") {
                    if let Some(cut) = shared.cut_next_photo_after.take() {
                        *budget.lock().unwrap() = Some(cut);
                    }
                }
                shared.requests.push(head.to_owned());
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let allowed = match *budget.lock().unwrap() {
                Some(left) => left.min(n),
                None => n,
            };
            if client_write.write_all(&buffer[..allowed]).await.is_err() {
                break;
            }
            if let Some(left) = budget.lock().unwrap().as_mut() {
                *left -= allowed;
                if *left == 0 {
                    break; // Drop the connection mid-body.
                }
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
