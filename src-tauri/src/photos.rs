//! The `photo:` URI scheme: originals, geometry, previews, thumbnails and Deep Zoom tiles from
//! the encrypted cache, decrypted in memory only, never cached by the webview (`no-store`).

use std::borrow::Cow;

use tauri::http::{header, Request, Response, StatusCode};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};

use crate::state::AppState;

pub const SCHEME: &str = dermdesk_core::photos::PHOTO_SCHEME;

/// The URL the webview loads a photo from: `http://photo.localhost/…` on Windows (WebView2),
/// `photo://localhost/…` elsewhere. Made, and tested per OS, in the core.
pub use dermdesk_core::photos::photo_url;

pub fn handle<R: Runtime>(
    context: UriSchemeContext<'_, R>,
    request: Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app = context.app_handle().clone();
    let path = request.uri().path().to_owned();
    tauri::async_runtime::spawn(async move {
        responder.respond(respond(&app, path).await);
    });
}

/// Routing, decoding and tiling are the core's (`Desk::serve_photo`); this only moves bytes.
async fn respond<R: Runtime>(app: &tauri::AppHandle<R>, path: String) -> Response<Cow<'static, [u8]>> {
    let Ok(desk) = app.state::<AppState>().desk() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "cache not open yet");
    };
    let served = tauri::async_runtime::spawn_blocking(move || desk.serve_photo(&path)).await;
    let Ok(served) = served else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "photo could not be read from the cache");
    };
    Response::builder()
        .status(served.status)
        .header(header::CONTENT_TYPE, served.content_type)
        .header(header::CACHE_CONTROL, "no-store")
        // Lets OpenSeadragon's WebGL drawer use the pixels (the page is another origin).
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(Cow::Owned(served.body))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Cow<'static, [u8]>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(Cow::Borrowed(text.as_bytes()))
        .expect("static response")
}
