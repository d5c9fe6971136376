//! The `photo:` URI scheme: serves verified photos from the encrypted cache to the webview,
//! decrypted in memory only, never cached by the webview (`no-store`).

use std::borrow::Cow;

use tauri::http::{header, Request, Response, StatusCode};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};

use crate::state::AppState;

pub const SCHEME: &str = "photo";

/// The URL the webview loads a photo from. Windows (WebView2) serves custom schemes as
/// `http://<scheme>.localhost/`; WebKitGTK and WKWebView use `<scheme>://localhost/`.
pub fn photo_url(content_id: &str) -> String {
    if cfg!(windows) {
        format!("http://{SCHEME}.localhost/{content_id}")
    } else {
        format!("{SCHEME}://localhost/{content_id}")
    }
}

pub fn handle<R: Runtime>(
    context: UriSchemeContext<'_, R>,
    request: Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app = context.app_handle().clone();
    let content_id = request.uri().path().trim_start_matches('/').to_owned();
    tauri::async_runtime::spawn(async move {
        responder.respond(respond(&app, content_id).await);
    });
}

async fn respond<R: Runtime>(app: &tauri::AppHandle<R>, content_id: String) -> Response<Cow<'static, [u8]>> {
    if !dermdesk_protocol::is_content_id(&content_id) {
        return plain(StatusCode::BAD_REQUEST, "not a photo address");
    }
    let Ok(desk) = app.state::<AppState>().desk() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "cache not open yet");
    };
    let photo = tauri::async_runtime::spawn_blocking(move || desk.photo(&content_id)).await;
    match photo {
        Ok(Ok(Some((media_type, bytes)))) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, media_type)
            .header(header::CACHE_CONTROL, "no-store")
            // Lets a WebGL drawer (OpenSeadragon) read the pixels.
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
            .body(Cow::Owned(bytes))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response")),
        Ok(Ok(None)) => plain(StatusCode::NOT_FOUND, "photo not downloaded yet"),
        _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "photo could not be read from the cache"),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Cow<'static, [u8]>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Cow::Borrowed(text.as_bytes()))
        .expect("static response")
}
