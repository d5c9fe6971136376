//! Signed updates: `cargo xtask update-key FILE` makes a minisign key pair in Tauri's format
//! (base64 of the minisign key files; FILE is the secret half, mode 0600, FILE.pub the public
//! half), and `cargo xtask sign-update ...` signs an installer the way `tauri signer sign` does
//! (trusted comment `timestamp:…\tfile:…\tversion:…`, so the app can require the signed
//! version) and writes the service's static `latest.json` beside it (Tauri's static format).
//!
//! The release key's secret half lives only in the hosted CI secret `TAURI_SIGNING_PRIVATE_KEY`
//! (its password in `TAURI_SIGNING_PRIVATE_KEY_PASSWORD`); its public half is
//! `keys/update-release.pub`, compiled into the app. Tests make a throwaway pair at run time.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::Result;

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A key pair as Tauri keeps it: base64 of the minisign secret and public key files.
pub struct KeyPair {
    pub secret: String,
    pub public: String,
}

/// A new key pair; `password` encrypts the secret half (scrypt), `None` leaves it unencrypted
/// (throwaway test keys only).
pub fn generate(password: Option<&str>) -> Result<KeyPair> {
    let pair = match password {
        Some(password) => minisign::KeyPair::generate_encrypted_keypair(Some(password.to_owned())),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| format!("cannot make a key pair: {e}"))?;
    let public = pair.pk.to_box().map_err(|e| e.to_string())?.to_string();
    let secret = pair.sk.to_box(None).map_err(|e| e.to_string())?.to_string();
    Ok(KeyPair { secret: BASE64.encode(secret), public: BASE64.encode(public) })
}

fn decode_text(base64_text: &str, what: &str) -> Result<String> {
    let bytes = BASE64.decode(base64_text.trim()).map_err(|e| format!("{what} is not base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("{what} is not a minisign key"))
}

/// The secret key from Tauri's base64 form (or a file holding it) and its password.
pub fn secret_key(key_or_path: &str, password: Option<&str>) -> Result<minisign::SecretKey> {
    let text = if Path::new(key_or_path).is_file() {
        std::fs::read_to_string(key_or_path).map_err(|e| format!("{key_or_path}: {e}"))?
    } else {
        key_or_path.to_owned()
    };
    let text = decode_text(&text, "the signing key")?;
    let boxed =
        || minisign::SecretKeyBox::from_string(&text).map_err(|e| format!("not a minisign secret key: {e}"));
    // A throwaway test key is unencrypted; the release key is encrypted (its password may be
    // empty, as tauri-cli allows).
    if let Ok(key) = boxed()?.into_unencrypted_secret_key() {
        return Ok(key);
    }
    boxed()?
        .into_secret_key(Some(password.unwrap_or_default().to_owned()))
        .map_err(|e| format!("the signing key could not be opened (wrong password?): {e}"))
}

/// Signs `package` as `version`: the `.sig` file's content (base64 of the minisign signature
/// file), as `tauri signer sign` writes it and the updater's manifest carries it.
pub fn sign(key: &minisign::SecretKey, package: &Path, version: &str) -> Result<String> {
    let name = package.file_name().and_then(|n| n.to_str()).ok_or("the package needs a plain file name")?;
    if name.contains(['\t', '\r', '\n']) || version.contains(['\t', '\r', '\n']) {
        return Err("a file name or version with a tab or newline cannot be signed".into());
    }
    let timestamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let trusted = format!("timestamp:{timestamp}\tfile:{name}\tversion:{version}");
    let file = std::fs::File::open(package).map_err(|e| format!("{}: {e}", package.display()))?;
    let signature = minisign::sign(
        None,
        key,
        std::io::BufReader::new(file),
        Some(&trusted),
        Some("signature from tauri secret key"),
    )
    .map_err(|e| format!("cannot sign {name}: {e}"))?;
    Ok(BASE64.encode(signature.to_string()))
}

/// The manifest key of an installer for 64-bit Linux, by its extension (what the updater looks
/// for first: `{os}-{arch}-{bundle type}`).
pub fn platform_of(package: &Path) -> Result<&'static str> {
    let name = package.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.ends_with(".deb") {
        Ok("linux-x86_64-deb")
    } else if name.ends_with(".rpm") {
        Ok("linux-x86_64-rpm")
    } else if name.ends_with(".AppImage") {
        Ok("linux-x86_64-appimage")
    } else {
        Err(format!("{name}: only .deb, .rpm and .AppImage are signed here (Windows and macOS: hosted CI)"))
    }
}

/// `name` with every byte but ASCII letters, digits and `._+-` made a `-`.
pub fn published_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "._+-".contains(c) { c } else { '-' }).collect()
}

/// What `sign-update` does: copies `package` into `out`, writes its `.sig` beside it, and adds
/// it to `out/latest.json` (made if missing; a release's other platforms already there are kept
/// when the version is the same, dropped when it is not).
pub fn publish(
    key: &minisign::SecretKey,
    package: &Path,
    version: &str,
    base_url: &str,
    notes: Option<&str>,
    out: &Path,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let original =
        package.file_name().and_then(|n| n.to_str()).ok_or("the package needs a plain file name")?;
    let platform = platform_of(package)?;
    // The bundler names the installers after the product ("Derm Desk_0.1.1_amd64.deb"); a
    // service serves plain names (the reference hub nothing else), so it is published as one.
    let name = &published_name(original);
    let copy = out.join(name);
    if package.canonicalize().ok() != copy.canonicalize().ok() {
        std::fs::copy(package, &copy)
            .map_err(|e| format!("{} -> {}: {e}", package.display(), copy.display()))?;
    }
    let signature = sign(key, &copy, version)?;
    std::fs::write(out.join(format!("{name}.sig")), &signature).map_err(|e| e.to_string())?;

    let manifest_path = out.join("latest.json");
    let mut platforms = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&manifest_path) {
        let old: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("latest.json: {e}"))?;
        if old["version"] == version {
            if let Some(map) = old["platforms"].as_object() {
                platforms.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    let url = format!("{}/{name}", base_url.trim_end_matches('/'));
    platforms.insert(platform.to_owned(), serde_json::json!({ "url": url, "signature": signature }));
    let pub_date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let manifest = serde_json::json!({
        "version": version,
        "notes": notes.unwrap_or(""),
        "pub_date": pub_date,
        "platforms": platforms,
    });
    let mut text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    text.push('\n');
    std::fs::write(&manifest_path, text).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    Ok(manifest_path)
}

/// Writes the secret half readable by its owner only.
fn write_secret(path: &Path, text: &str) -> Result {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e} (an existing key is never overwritten)", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

/// `cargo xtask update-key FILE`: a new pair, the password from
/// `TAURI_SIGNING_PRIVATE_KEY_PASSWORD` (none: unencrypted, for tests only).
pub fn update_key(args: &[String]) -> Result {
    let [file] = args else {
        return Err("usage: cargo xtask update-key FILE (writes FILE and FILE.pub)".into());
    };
    let password = std::env::var("TAURI_SIGNING_PRIVATE_KEY_PASSWORD").ok().filter(|p| !p.is_empty());
    if password.is_none() {
        eprintln!(
            "no TAURI_SIGNING_PRIVATE_KEY_PASSWORD: the secret key is NOT encrypted (throwaway keys only)"
        );
    }
    let pair = generate(password.as_deref())?;
    let path = PathBuf::from(file);
    write_secret(&path, &pair.secret)?;
    std::fs::write(format!("{file}.pub"), format!("{}\n", pair.public)).map_err(|e| e.to_string())?;
    println!("secret key: {} (keep it out of the repository)\npublic key: {file}.pub", path.display());
    Ok(())
}

/// `cargo xtask sign-update --package FILE --version V --base-url URL --out DIR [--notes TEXT]`,
/// with the key in `TAURI_SIGNING_PRIVATE_KEY` (base64, or a path) and its password in
/// `TAURI_SIGNING_PRIVATE_KEY_PASSWORD`.
pub fn sign_update(args: &[String]) -> Result {
    let usage =
        "usage: cargo xtask sign-update --package FILE --version V --base-url URL --out DIR [--notes TEXT]";
    let mut options: BTreeMap<&str, &str> = BTreeMap::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let name = flag.strip_prefix("--").ok_or(usage)?;
        if !["package", "version", "base-url", "out", "notes"].contains(&name) {
            return Err(format!("unknown option {flag}; {usage}"));
        }
        options.insert(name, rest.next().ok_or(usage)?);
    }
    let need = |name: &str| options.get(name).copied().ok_or_else(|| format!("--{name} is missing; {usage}"));
    let key_text = std::env::var("TAURI_SIGNING_PRIVATE_KEY").map_err(|_| {
        "TAURI_SIGNING_PRIVATE_KEY is not set (the release key lives in the hosted CI secret)"
    })?;
    let password = std::env::var("TAURI_SIGNING_PRIVATE_KEY_PASSWORD").ok();
    let key = secret_key(&key_text, password.as_deref())?;
    let manifest = publish(
        &key,
        Path::new(need("package")?),
        need("version")?,
        need("base-url")?,
        options.get("notes").copied(),
        Path::new(need("out")?),
    )?;
    println!("wrote {}", manifest.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verifies as tauri-plugin-updater does (minisign-verify, the same crate and calls).
    fn verify(public: &str, signature: &str, data: &[u8]) -> std::result::Result<String, String> {
        let public = minisign_verify::PublicKey::decode(&decode_text(public, "public key")?)
            .map_err(|e| e.to_string())?;
        let signature = minisign_verify::Signature::decode(&decode_text(signature, "signature")?)
            .map_err(|e| e.to_string())?;
        public.verify(data, &signature, true).map_err(|e| e.to_string())?;
        Ok(signature.trusted_comment().to_owned())
    }

    #[test]
    fn a_signed_installer_verifies_as_the_updater_verifies_it_and_names_its_version() {
        let pair = generate(None).unwrap();
        let key = secret_key(&pair.secret, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // As the bundler names it: the product name, with its space (not servable as it is).
        let package = dir.path().join("Derm Desk_0.1.1_amd64.deb");
        std::fs::write(&package, b"!<arch>\ndebian-binary and the rest").unwrap();
        let out = dir.path().join("updates");
        publish(&key, &package, "0.1.1", "http://127.0.0.1:9/updates/", Some("Fixes"), &out).unwrap();

        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("latest.json")).unwrap()).unwrap();
        assert_eq!(manifest["version"], "0.1.1");
        assert_eq!(manifest["notes"], "Fixes");
        let entry = &manifest["platforms"]["linux-x86_64-deb"];
        assert_eq!(entry["url"], "http://127.0.0.1:9/updates/Derm-Desk_0.1.1_amd64.deb");
        let signature = entry["signature"].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(out.join("Derm-Desk_0.1.1_amd64.deb.sig")).unwrap(), signature);

        let bytes = std::fs::read(out.join("Derm-Desk_0.1.1_amd64.deb")).unwrap();
        let trusted = verify(&pair.public, signature, &bytes).unwrap();
        assert!(trusted.ends_with("\tfile:Derm-Desk_0.1.1_amd64.deb\tversion:0.1.1"), "{trusted}");

        // One flipped bit, or another key, and it no longer verifies.
        let mut tampered = bytes.clone();
        tampered[3] ^= 1;
        assert!(verify(&pair.public, signature, &tampered).is_err());
        let other = generate(None).unwrap();
        assert!(verify(&other.public, signature, &bytes).is_err());
    }

    #[test]
    fn an_encrypted_key_needs_its_password() {
        let pair = generate(Some("correct horse")).unwrap();
        assert!(secret_key(&pair.secret, Some("wrong")).is_err());
        assert!(secret_key(&pair.secret, Some("correct horse")).is_ok());
    }

    #[test]
    fn a_second_installer_of_the_same_release_joins_the_manifest_and_a_new_release_replaces_it() {
        let pair = generate(None).unwrap();
        let key = secret_key(&pair.secret, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("updates");
        for name in ["Derm-Desk_0.1.1_amd64.deb", "Derm-Desk-0.1.1-1.x86_64.rpm"] {
            std::fs::write(dir.path().join(name), name).unwrap();
            publish(&key, &dir.path().join(name), "0.1.1", "https://hub.example/updates", None, &out)
                .unwrap();
        }
        let read = || -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(out.join("latest.json")).unwrap()).unwrap()
        };
        let platforms = read()["platforms"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(platforms, ["linux-x86_64-deb", "linux-x86_64-rpm"]);
        std::fs::write(dir.path().join("Derm-Desk_0.1.2_amd64.deb"), "x").unwrap();
        publish(
            &key,
            &dir.path().join("Derm-Desk_0.1.2_amd64.deb"),
            "0.1.2",
            "https://hub.example/updates",
            None,
            &out,
        )
        .unwrap();
        let platforms = read()["platforms"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(platforms, ["linux-x86_64-deb"]);
        assert!(platform_of(Path::new("setup.exe")).is_err());
    }

    /// The committed release key is a public key, and no secret key is committed anywhere
    /// under keys/.
    #[test]
    fn only_the_public_half_of_the_release_key_is_in_the_repository() {
        let keys = crate::root().join("keys");
        let public = std::fs::read_to_string(keys.join("update-release.pub")).unwrap();
        let text = decode_text(&public, "the release key").unwrap();
        minisign_verify::PublicKey::decode(&text).unwrap();
        for entry in std::fs::read_dir(&keys).unwrap() {
            let path = entry.unwrap().path();
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            let decoded = decode_text(&content, "key").unwrap_or_default();
            assert!(
                !decoded.contains("secret key") && !content.contains("secret key"),
                "{} holds a secret key",
                path.display()
            );
        }
    }
}
