//! End-to-end: every EXIF orientation (1–8) displays upright in the real window. The demo adds
//! a synthetic orientation chart referral (`DERMDESK_DEMO_ORIENTATION=1`): eight JPEGs whose
//! stored pixels are one chart turned or mirrored the other way, each tagged with the
//! orientation that turns it back. Each is shown alone, fitted, and a WebDriver screenshot is
//! checked pixel by pixel where the photo sits on screen (OpenSeadragon's own bounding box of
//! the image, not a search for colours): red top left, green top right, blue bottom left,
//! yellow bottom right, the arrow pointing up, landscape; and so must the filmstrip's
//! thumbnails (plain images, read back through a canvas). Writes one screenshot per orientation
//! to target/e2e and a contact sheet of the eight panes to docs/screenshots/orientations.png.

use std::path::PathBuf;
use std::time::Duration;

use dermdesk_e2e::{click, screenshot_dir, screenshot_png, wait_for, wait_for_viewers_settled, Driver};
use dermdesk_synth::orientation::{
    chart_arrow_contains, CHART_ARROW, CHART_BACKGROUND, CHART_BOTTOM_LEFT, CHART_BOTTOM_RIGHT,
    CHART_TOP_LEFT, CHART_TOP_RIGHT,
};
use dermdesk_synth::ORIENTATION_CHART_REFERRAL;
use fantoccini::Client;
use serde_json::Value;

const PANE: &str = "document.querySelector('.pane-cell[data-index=\"0\"]')";

/// A decoded screenshot (RGB).
struct Screen {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Screen {
    fn decode(png_bytes: &[u8]) -> Screen {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().expect("a PNG screenshot");
        let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
        let frame = reader.next_frame(&mut buffer).expect("the screenshot's pixels");
        let channels = frame.color_type.samples();
        let pixels = buffer[..frame.buffer_size()]
            .chunks_exact(channels)
            .flat_map(|pixel| match channels {
                1 | 2 => [pixel[0], pixel[0], pixel[0]],
                _ => [pixel[0], pixel[1], pixel[2]],
            })
            .collect();
        Screen { width: frame.width, height: frame.height, pixels }
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let at = (y.min(self.height - 1) * self.width + x.min(self.width - 1)) as usize * 3;
        [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]]
    }

    /// Mean colour of a 7 x 7 patch centred on (x, y).
    fn patch(&self, x: f64, y: f64) -> [u8; 3] {
        let mut sum = [0u32; 3];
        for dy in -3..=3i32 {
            for dx in -3..=3i32 {
                let pixel = self.pixel((x as i32 + dx).max(0) as u32, (y as i32 + dy).max(0) as u32);
                for channel in 0..3 {
                    sum[channel] += u32::from(pixel[channel]);
                }
            }
        }
        sum.map(|total| (total / 49) as u8)
    }
}

/// The photo's rectangle on screen in screenshot pixels: OpenSeadragon's bounding box of the
/// tiled image (axis-aligned; quarter turns keep it exact), through the viewport, plus the
/// viewer element's place in the page, times the device pixel ratio.
#[derive(Debug, Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

async fn photo_rect(client: &Client) -> Rect {
    let value = client
        .execute(
            &format!(
                "const host = {PANE}.querySelector('.osd-host'); \
                 const viewer = OpenSeadragon.getViewer(host); \
                 const item = viewer.world.getItemAt(viewer.world.getItemCount() - 1); \
                 const box = viewer.viewport.viewportToViewerElementRectangle(item.getBounds(true).getBoundingBox()); \
                 const page = host.getBoundingClientRect(); \
                 const ratio = window.devicePixelRatio || 1; \
                 return [ (page.left + box.x) * ratio, (page.top + box.y) * ratio, box.width * ratio, box.height * ratio, \
                          viewer.viewport.getRotation(), viewer.viewport.getFlip() ];"
            ),
            vec![],
        )
        .await
        .unwrap();
    let number = |index: usize| value[index].as_f64().unwrap_or_else(|| panic!("a number: {value}"));
    assert_eq!(value[4], Value::from(0), "the view itself is not turned: {value}");
    assert_eq!(value[5], Value::Bool(false), "the view itself is not mirrored: {value}");
    Rect { x: number(0), y: number(1), width: number(2), height: number(3) }
}

fn close(seen: [u8; 3], expected: [u8; 3]) -> bool {
    seen.iter().zip(expected).all(|(&seen, expected)| seen.abs_diff(expected) <= 40)
}

/// What is wrong with the chart as shown at `rect`, if anything.
fn check_upright(screen: &Screen, rect: Rect) -> Vec<String> {
    let at = |fx: f64, fy: f64| screen.patch(rect.x + fx * rect.width, rect.y + fy * rect.height);
    let mut wrong = Vec::new();
    if rect.width <= rect.height {
        wrong.push(format!("shown {:.0} x {:.0}: portrait, the chart is landscape", rect.width, rect.height));
    }
    let corner = 0.1;
    for (name, fx, fy, expected) in [
        ("top left", corner, corner, CHART_TOP_LEFT),
        ("top right", 1.0 - corner, corner, CHART_TOP_RIGHT),
        ("bottom left", corner, 1.0 - corner, CHART_BOTTOM_LEFT),
        ("bottom right", 1.0 - corner, 1.0 - corner, CHART_BOTTOM_RIGHT),
    ] {
        let seen = at(fx, fy);
        if !close(seen, expected) {
            wrong.push(format!("{name} is {seen:?}, expected {expected:?}"));
        }
    }
    // The arrow: the head is wide near its base, the shaft below it narrow.
    for (fx, fy) in [(0.5, 0.2), (0.40, 0.44), (0.40, 0.56), (0.60, 0.56), (0.5, 0.8)] {
        let expected = if chart_arrow_contains(fx, fy) { CHART_ARROW } else { CHART_BACKGROUND };
        let seen = at(fx, fy);
        if !close(seen, expected) {
            wrong.push(format!("arrow at ({fx}, {fy}) is {seen:?}, expected {expected:?}"));
        }
    }
    wrong
}

/// Copies `rect` (plus a margin) of `screen` into `sheet` at `(left, top)`, scaled to fit
/// `cell` x `cell` (nearest pixel).
fn paste(
    sheet: &mut [u8],
    sheet_width: u32,
    screen: &Screen,
    rect: Rect,
    (left, top): (u32, u32),
    cell: u32,
) {
    let margin = 6.0;
    let (x0, y0) = (rect.x - margin, rect.y - margin);
    let (width, height) = (rect.width + 2.0 * margin, rect.height + 2.0 * margin);
    let scale = f64::from(cell) / width.max(height);
    let (cell_width, cell_height) = ((width * scale) as u32, (height * scale) as u32);
    let (offset_x, offset_y) = ((cell - cell_width) / 2, (cell - cell_height) / 2);
    for y in 0..cell_height {
        for x in 0..cell_width {
            let source = screen.pixel(
                (x0 + f64::from(x) / scale).max(0.0) as u32,
                (y0 + f64::from(y) / scale).max(0.0) as u32,
            );
            let at = (((top + offset_y + y) * sheet_width) + left + offset_x + x) as usize * 3;
            sheet[at..at + 3].copy_from_slice(&source);
        }
    }
}

fn write_png(path: &std::path::Path, width: u32, height: u32, rgb: &[u8]) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(rgb).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_exif_orientation_displays_upright_in_the_window() {
    if dermdesk_e2e::skip_without_window("orientation") {
        return;
    }
    // Its own data and cache folders: the chart referral must not join the other tests' demo.
    let scratch = std::env::temp_dir().join(format!("dermdesk-e2e-orientation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (data, cache) = (scratch.join("data"), scratch.join("cache"));
    let driver = Driver::start_with_env(&[
        ("DERMDESK_DEMO_ORIENTATION", "1"),
        ("XDG_DATA_HOME", data.to_str().unwrap()),
        ("XDG_CACHE_HOME", cache.to_str().unwrap()),
    ]);
    let started = std::time::Instant::now();
    let client = driver.open_app(&["--demo"]).await;

    let row = format!(".worklist-row[data-referral-id=\"{ORIENTATION_CHART_REFERRAL}\"]");
    wait_for(
        &client,
        "the orientation chart referral",
        Duration::from_secs(300),
        &format!("document.querySelector('{row}')"),
    )
    .await;
    // Clicked from the page: a sync in progress re-renders the worklist under a held element.
    client.execute(&format!("document.querySelector('{row}').click();"), vec![]).await.unwrap();
    wait_for(
        &client,
        "its eight photos downloaded",
        Duration::from_secs(120),
        &format!(
            "document.querySelector('#detail-content')?.dataset.referralId === '{ORIENTATION_CHART_REFERRAL}' \
             && document.querySelectorAll('.filmstrip-item .thumb:not(.is-downloading)').length === 8"
        ),
    )
    .await;
    eprintln!("the chart referral is open after {:.1?}", started.elapsed());
    click(&client, "#layout-1").await;

    let thumbs = client
        .execute(
            "return [...document.querySelectorAll('.filmstrip-item .thumb')].map(t => \
               [t.dataset.contentId, t.querySelector('.thumb-site').textContent]);",
            vec![],
        )
        .await
        .unwrap();
    let thumbs: Vec<(String, u8)> = thumbs
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let site = pair[1].as_str().unwrap();
            let orientation = site.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("{site}"));
            (pair[0].as_str().unwrap().to_owned(), orientation)
        })
        .collect();
    let mut orientations: Vec<u8> = thumbs.iter().map(|(_, orientation)| *orientation).collect();
    orientations.sort_unstable();
    assert_eq!(orientations, (1..=8).collect::<Vec<u8>>(), "one chart per orientation");

    let cell = 360;
    let (columns, rows) = (4, 2);
    let sheet_width = cell * columns;
    let mut sheet = vec![255u8; (sheet_width * cell * rows * 3) as usize];
    let mut failures = Vec::new();
    for (content_id, orientation) in &thumbs {
        client
            .execute(
                &format!("document.querySelector('.filmstrip-item .thumb[data-content-id=\"{content_id}\"]').click();"),
                vec![],
            )
            .await
            .unwrap();
        let shown =
            format!("{PANE}.dataset.contentId === '{content_id}' && {PANE}.dataset.loaded === 'true'");
        wait_for(&client, &format!("orientation {orientation} shown"), Duration::from_secs(60), &shown).await;
        click(&client, "#viewer-fit").await;
        // goHome animates; then every tile of the fitted view is drawn.
        wait_for_viewers_settled(&client, &format!("orientation {orientation} fitted")).await;
        wait_for(&client, &format!("orientation {orientation} fitted"), Duration::from_secs(60), &shown)
            .await;
        let rect = photo_rect(&client).await;
        // Taken while the page keeps painting: an idle page under Xvfb may make no rendering
        // update (which the screenshot waits for) for many seconds.
        let png_bytes = screenshot_png(&client).await;
        std::fs::write(screenshot_dir().join(format!("orientation-{orientation}.png")), &png_bytes).unwrap();
        let screen = Screen::decode(&png_bytes);
        let wrong = check_upright(&screen, rect);
        eprintln!(
            "{:>5.1?} orientation {orientation}: photo at {:.0},{:.0} {:.0}x{:.0} on a {}x{} screenshot: {}",
            started.elapsed(),
            rect.x,
            rect.y,
            rect.width,
            rect.height,
            screen.width,
            screen.height,
            if wrong.is_empty() { "upright".to_owned() } else { wrong.join("; ") }
        );
        if !wrong.is_empty() {
            failures.push(format!("orientation {orientation}: {}", wrong.join("; ")));
        }
        let index = u32::from(orientation - 1);
        paste(
            &mut sheet,
            sheet_width,
            &screen,
            rect,
            ((index % columns) * cell, (index / columns) * cell),
            cell,
        );
    }
    // The filmstrip's thumbnails are plain images: each must be the upright chart too.
    let thumbnails = client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             Promise.all([...document.querySelectorAll('.filmstrip-item .thumb')].map(async (thumb) => { \
               const image = thumb.querySelector('img'); \
               const bitmap = await createImageBitmap(await (await fetch(image.src, { cache: 'no-store' })).blob()); \
               const canvas = new OffscreenCanvas(bitmap.width, bitmap.height); \
               const context = canvas.getContext('2d'); \
               context.drawImage(bitmap, 0, 0); \
               const at = (fx, fy) => [...context.getImageData(Math.floor(fx * bitmap.width), Math.floor(fy * bitmap.height), 1, 1).data.slice(0, 3)]; \
               return [thumb.querySelector('.thumb-site').textContent, bitmap.width, bitmap.height, \
                       at(0.08, 0.08), at(0.92, 0.08), at(0.08, 0.92), at(0.92, 0.92)]; \
             })).then(done, (error) => done(String(error)));",
            vec![],
        )
        .await
        .unwrap();
    let thumbnails = thumbnails.as_array().unwrap_or_else(|| panic!("thumbnail pixels: {thumbnails}"));
    assert_eq!(thumbnails.len(), 8, "{thumbnails:?}");
    for thumbnail in thumbnails {
        let colour = |index: usize| -> [u8; 3] {
            let channels: Vec<u8> =
                thumbnail[index].as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as u8).collect();
            [channels[0], channels[1], channels[2]]
        };
        let (width, height) = (thumbnail[1].as_u64().unwrap(), thumbnail[2].as_u64().unwrap());
        let expected = [CHART_TOP_LEFT, CHART_TOP_RIGHT, CHART_BOTTOM_LEFT, CHART_BOTTOM_RIGHT];
        let upright = width > height && (0..4).all(|corner| close(colour(3 + corner), expected[corner]));
        eprintln!(
            "thumbnail of {}: {width}x{height}, {}",
            thumbnail[0],
            if upright { "upright" } else { "NOT upright" }
        );
        if !upright {
            failures.push(format!("the thumbnail of {} is not upright: {thumbnail}", thumbnail[0]));
        }
    }

    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots/orientations.png");
    write_png(&docs, sheet_width, cell * rows, &sheet);
    write_png(&screenshot_dir().join("orientations.png"), sheet_width, cell * rows, &sheet);
    assert!(failures.is_empty(), "not upright in the window:\n{}", failures.join("\n"));
    let _ = std::fs::remove_dir_all(&scratch);
}
