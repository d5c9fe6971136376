//! The directory of Derm Desk updates a service publishes (`GET /updates/{file}`): the static
//! `latest.json` (Tauri's static update manifest) and the signed installers it names. The hub
//! only serves the files; it never signs anything and never reads their contents: the app
//! checks each installer's signature against the release key compiled into it.

use std::path::{Path, PathBuf};

/// The route the app asks for updates, under the service's address (docs/api.md).
pub const MANIFEST_FILE: &str = "latest.json";

/// A file name the updates route serves: a plain name (letters, digits, `.`, `_`, `-`, `+`),
/// never hidden, never a path. Anything else is "no such file", so no request can leave the
/// directory.
pub fn servable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'+'))
}

/// The file `name` in `dir`, if it may be served and is a regular file there.
pub fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    if !servable_name(name) {
        return None;
    }
    let path = dir.join(name);
    // `symlink_metadata`: a link placed in the directory is not followed out of it.
    std::fs::symlink_metadata(&path).ok().filter(|meta| meta.is_file()).map(|_| path)
}

/// The content type an updates file is served with.
pub fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".sig") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_served() {
        assert!(servable_name("latest.json"));
        assert!(servable_name("Derm-Desk_0.1.1_amd64.deb"));
        assert!(servable_name("Derm-Desk_0.1.1+build.2_amd64.deb.sig"));
        for name in
            ["", ".hidden", "..", "../etc/passwd", "a/b", "a\\b", "name with space", "é.deb", "%2e%2e"]
        {
            assert!(!servable_name(name), "{name:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_link_or_a_directory_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("latest.json"), "{}").unwrap();
        std::fs::create_dir(dir.path().join("sub.deb")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.deb")).unwrap();
        assert!(find(dir.path(), "latest.json").is_some());
        assert!(find(dir.path(), "sub.deb").is_none());
        assert!(find(dir.path(), "link.deb").is_none());
        assert!(find(dir.path(), "missing.deb").is_none());
    }
}
