//! The app's whole icon set (`cargo xtask icons`), made from one source image
//! (`icons/source.png`, 1024 x 1024 RGBA, synthetic artwork: icons/README.md).
//!
//! The same sizes and formats as `tauri icon` makes for desktop bundles: PNGs for Linux (the
//! .deb/.rpm put them under /usr/share/icons/hicolor; the window icon is the first PNG of
//! tauri.conf.json's `bundle.icon`), a multi-size `icon.ico` (Windows: tauri-build compiles it
//! into the .exe, and the build fails without it) and `icon.icns` (macOS). Not the Microsoft
//! Store tiles (`Square*Logo.png`, `StoreLogo.png`): Tauri uses them for no bundle it makes
//! (.msi and NSIS take the .ico). The test below checks that the committed files are what this
//! makes from the source, so the set cannot drift from it.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{ExtendedColorType, ImageEncoder, RgbaImage};

type Result<T = ()> = std::result::Result<T, String>;

/// The repository (this crate sits in xtask/icons).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The one image every icon is made from, relative to the repository.
pub const SOURCE: &str = "icons/source.png";
/// The source's side: the largest icon (`icon.icns`'s 512 pt @2x) is this size.
const SOURCE_SIDE: u32 = 1024;

/// The PNG files and their side in pixels (`tauri icon`'s desktop set).
const PNGS: &[(&str, u32)] =
    &[("32x32.png", 32), ("64x64.png", 64), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)];
/// The layers of `icon.ico` (`tauri icon`'s); 256 is stored as PNG, the others as 32-bit BMP,
/// which every Windows version and resource compiler reads.
const ICO_SIDES: &[u32] = &[16, 24, 32, 48, 64, 256];
/// The entries of `icon.icns` and their side in pixels (`tauri icon`'s, from 16 pt to 512 pt @2x).
const ICNS: &[(icns::IconType, u32)] = &[
    (icns::IconType::RGB24_16x16, 16),
    (icns::IconType::RGBA32_16x16_2x, 32),
    (icns::IconType::RGB24_32x32, 32),
    (icns::IconType::RGBA32_32x32_2x, 64),
    (icns::IconType::RGBA32_128x128, 128),
    (icns::IconType::RGBA32_128x128_2x, 256),
    (icns::IconType::RGBA32_256x256, 256),
    (icns::IconType::RGBA32_256x256_2x, 512),
    (icns::IconType::RGBA32_512x512, 512),
    (icns::IconType::RGBA32_512x512_2x, 1024),
];

/// Every file the set holds, in `icons/`.
pub fn file_names() -> Vec<&'static str> {
    PNGS.iter().map(|(name, _)| *name).chain(["icon.ico", "icon.icns"]).collect()
}

/// Writes the set into `root`/icons (only the files that change); returns those written.
pub fn write(root: &Path) -> Result<Vec<PathBuf>> {
    let folder = root.join("icons");
    let mut written = Vec::new();
    for (name, bytes) in generate(&read_source(&root.join(SOURCE))?)? {
        let path = folder.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The source image, refused unless it is a square RGBA PNG of [`SOURCE_SIDE`] pixels.
pub fn read_source(path: &Path) -> Result<RgbaImage> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if image.width() != SOURCE_SIDE || image.height() != SOURCE_SIDE || !image.color().has_alpha() {
        return Err(format!(
            "{}: the icon source must be a {SOURCE_SIDE} x {SOURCE_SIDE} PNG with transparency, not {} x {} {:?}",
            path.display(),
            image.width(),
            image.height(),
            image.color()
        ));
    }
    Ok(image.into_rgba8())
}

/// One file of the set and the images it holds, each with its label in [`contents`]'s terms.
pub struct Planned {
    pub name: &'static str,
    pub images: Vec<(String, RgbaImage)>,
}

/// What each file of the set holds, made from `source` (resized, not yet encoded).
pub fn plan(source: &RgbaImage) -> Vec<Planned> {
    let mut files: Vec<Planned> = PNGS
        .iter()
        .map(|(name, side)| Planned { name, images: vec![((*name).to_owned(), resized(source, *side))] })
        .collect();
    files.push(Planned {
        name: "icon.ico",
        images: ICO_SIDES
            .iter()
            .map(|side| (format!("icon.ico {side} px"), resized(source, *side)))
            .collect(),
    });
    files.push(Planned {
        name: "icon.icns",
        images: ICNS
            .iter()
            .map(|(kind, side)| (format!("icon.icns {kind:?}"), resized(source, *side)))
            .collect(),
    });
    files
}

/// The whole set made from `source`: (file name in icons/, bytes).
pub fn generate(source: &RgbaImage) -> Result<Vec<(&'static str, Vec<u8>)>> {
    plan(source).into_iter().map(|file| Ok((file.name, encode(&file)?))).collect()
}

fn encode(file: &Planned) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file.name.ends_with(".png") {
        let image = &file.images[0].1;
        PngEncoder::new_with_quality(&mut bytes, CompressionType::Best, PngFilter::Adaptive)
            .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgba8)
            .map_err(|e| format!("{}: {e}", file.name))?;
    } else if file.name.ends_with(".ico") {
        let mut ico = ico::IconDir::new(ico::ResourceType::Icon);
        for (what, image) in &file.images {
            let layer = ico::IconImage::from_rgba_data(image.width(), image.height(), image.as_raw().clone());
            let entry = if image.width() >= 256 {
                ico::IconDirEntry::encode_as_png(&layer)
            } else {
                ico::IconDirEntry::encode_as_bmp(&layer)
            };
            ico.add_entry(entry.map_err(|e| format!("{what}: {e}"))?);
        }
        ico.write(&mut bytes).map_err(|e| format!("{}: {e}", file.name))?;
    } else {
        let mut icns = icns::IconFamily::new();
        for ((kind, _), (what, image)) in ICNS.iter().zip(&file.images) {
            let image = icns::Image::from_data(
                icns::PixelFormat::RGBA,
                image.width(),
                image.height(),
                image.as_raw().clone(),
            )
            .map_err(|e| format!("{what}: {e}"))?;
            icns.add_icon_with_type(&image, *kind).map_err(|e| format!("{what}: {e}"))?;
        }
        icns.write(&mut bytes).map_err(|e| format!("{}: {e}", file.name))?;
    }
    Ok(bytes)
}

/// `source` at `side` x `side` (Lanczos3, as `tauri icon` resizes).
fn resized(source: &RgbaImage, side: u32) -> RgbaImage {
    if source.width() == side {
        source.clone()
    } else {
        image::imageops::resize(source, side, side, FilterType::Lanczos3)
    }
}

/// One image a file of the set holds: (label, width, height, RGBA pixels).
pub type Decoded = (String, u32, u32, Vec<u8>);

/// What a file of the set shows, format aside: each image it holds as (what, width, height,
/// RGBA pixels). Two files with the same contents are the same icons, whatever encoder
/// settings wrote them.
pub fn contents(name: &str, bytes: &[u8]) -> Result<Vec<Decoded>> {
    if name.ends_with(".png") {
        let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .map_err(|e| format!("{name}: {e}"))?
            .into_rgba8();
        Ok(vec![(name.to_owned(), image.width(), image.height(), image.into_raw())])
    } else if name.ends_with(".ico") {
        let dir = ico::IconDir::read(Cursor::new(bytes)).map_err(|e| format!("{name}: {e}"))?;
        dir.entries()
            .iter()
            .map(|entry| {
                let image = entry.decode().map_err(|e| format!("{name}: {e}"))?;
                let what = format!("{name} {} px", entry.width());
                Ok((what, image.width(), image.height(), image.into_rgba_data()))
            })
            .collect()
    } else if name.ends_with(".icns") {
        let family = icns::IconFamily::read(Cursor::new(bytes)).map_err(|e| format!("{name}: {e}"))?;
        family
            .available_icons()
            .into_iter()
            .map(|kind| {
                let image = family.get_icon_with_type(kind).map_err(|e| format!("{name} {kind:?}: {e}"))?;
                let image = image.convert_to(icns::PixelFormat::RGBA);
                Ok((format!("{name} {kind:?}"), image.width(), image.height(), image.into_data().into_vec()))
            })
            .collect()
    } else {
        Err(format!("{name}: not a file of the icon set"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compares what the committed files hold, decoded, with what the generator makes before
    /// encoding (every container here is lossless): the same images at the same sizes.
    #[test]
    fn the_committed_icons_are_what_the_generator_makes_from_the_source() {
        let planned = plan(&read_source(&root().join(SOURCE)).unwrap());
        assert_eq!(planned.iter().map(|file| file.name).collect::<Vec<_>>(), file_names());
        for file in &planned {
            let path = root().join("icons").join(file.name);
            let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let found = contents(file.name, &committed).unwrap();
            let found_labels: Vec<_> =
                found.iter().map(|(what, width, height, _)| (what.clone(), *width, *height)).collect();
            let planned_labels: Vec<_> = file
                .images
                .iter()
                .map(|(what, image)| (what.clone(), image.width(), image.height()))
                .collect();
            assert_eq!(
                found_labels, planned_labels,
                "icons/{} holds other images than {SOURCE} gives",
                file.name
            );
            for ((what, _, _, pixels), (_, image)) in found.iter().zip(&file.images) {
                assert!(
                    pixels == image.as_raw(),
                    "{what} differs from what `cargo xtask icons` makes from {SOURCE}: run it and commit the icons"
                );
            }
        }
    }

    #[test]
    fn the_bundle_lists_every_icon_of_the_set() {
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root().join("tauri.conf.json")).unwrap()).unwrap();
        let mut listed: Vec<String> = config["bundle"]["icon"]
            .as_array()
            .expect("bundle.icon is a list")
            .iter()
            .map(|path| {
                path.as_str().unwrap().strip_prefix("icons/").expect("icons live in icons/").to_owned()
            })
            .collect();
        let mut made: Vec<String> = file_names().into_iter().map(str::to_owned).collect();
        listed.sort();
        made.sort();
        assert_eq!(listed, made, "tauri.conf.json's bundle.icon and the generated set differ");
    }

    #[test]
    fn each_format_holds_the_sizes_its_platform_asks_for() {
        let source = RgbaImage::from_pixel(SOURCE_SIDE, SOURCE_SIDE, image::Rgba([11, 110, 118, 255]));
        let planned = plan(&source);
        let sides = |name: &str| -> Vec<u32> {
            let file = planned.iter().find(|file| file.name == name).unwrap();
            file.images.iter().map(|(_, image)| image.width()).collect()
        };
        assert_eq!(sides("icon.ico"), ICO_SIDES);
        assert_eq!(sides("icon.icns"), [16, 32, 32, 64, 128, 256, 256, 512, 512, 1024]);
        assert_eq!(sides("128x128@2x.png"), [256]);
        assert_eq!(sides("icon.png"), [512]);
        // A flat colour stays that colour at every size (the resize neither darkens the edges
        // nor loses the alpha).
        for file in &planned {
            for (what, image) in &file.images {
                assert!(image.pixels().all(|pixel| pixel.0 == [11, 110, 118, 255]), "{what}");
            }
        }
    }

    /// The containers as written read back with their sizes (small layers: quick in a debug build).
    #[test]
    fn the_ico_and_icns_containers_read_back() {
        let source = RgbaImage::from_fn(SOURCE_SIDE, SOURCE_SIDE, |x, y| {
            image::Rgba([(x / 4) as u8, (y / 4) as u8, 90, 255])
        });
        for file in plan(&source).iter().filter(|file| file.name == "icon.ico") {
            let read = contents(file.name, &encode(file).unwrap()).unwrap();
            assert_eq!(read.len(), ICO_SIDES.len());
            for ((_, width, _, pixels), (_, image)) in read.iter().zip(&file.images) {
                assert_eq!(*width, image.width());
                assert!(pixels == image.as_raw(), "icon.ico {width} px round trip");
            }
        }
    }

    #[test]
    fn a_source_of_the_wrong_size_is_refused() {
        let dir = std::env::temp_dir().join(format!("dermdesk-icons-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("small.png");
        RgbaImage::new(512, 512).save(&path).unwrap();
        let error = read_source(&path).unwrap_err();
        assert!(error.contains("1024 x 1024"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
