//! The shell's attack surface as configured: tauri.conf.json and every capability file are
//! parsed and checked against what Derm Desk needs, so a regression (an inline-script CSP, a
//! shell plugin, the asset protocol, a new permission) fails here rather than in an audit.

use std::path::Path;

use serde_json::Value;

/// Every permission the webview may hold, and why. Anything else fails the lint.
const ALLOWED_PERMISSIONS: &[(&str, &str)] = &[
    ("core:event:allow-listen", "the UI follows sync progress and referral changes"),
    ("core:event:allow-unlisten", "and stops following them"),
];

/// Plugins that would let a script in the webview reach the shell, files, the network or
/// processes. None may be configured or linked. (The updater is linked, but its commands are
/// in no capability: only the shell calls it, with the core's manifest and download; its
/// configuration is checked by `updater_problems`.)
const FORBIDDEN_PLUGINS: &[&str] = &["shell", "fs", "http", "process", "opener", "sql", "store"];

/// The updater's configuration: signed version required, nothing that weakens its checks.
fn updater_problems(updater: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if updater["requireSignedVersion"] != Value::Bool(true) {
        problems.push(
            "updater: requireSignedVersion is not true (an older signed release could be replayed)".into(),
        );
    }
    for flag in [
        "dangerousInsecureTransportProtocol",
        "dangerousAcceptInvalidCerts",
        "dangerousAcceptInvalidHostnames",
        "allowDowngrades",
    ] {
        if updater.get(flag).is_some_and(|v| v != &Value::Bool(false)) {
            problems.push(format!("updater: {flag} is set"));
        }
    }
    if updater.get("endpoints").and_then(Value::as_array).is_some_and(|list| !list.is_empty()) {
        problems
            .push("updater: endpoints are configured (the core fetches from the enrolled service)".into());
    }
    problems
}

/// The workspace root (this test lives in tests/integration's package).
fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CSP as (directive, sources), from Tauri's string or object form.
fn csp_directives(csp: &Value) -> Vec<(String, Vec<String>)> {
    match csp {
        Value::String(text) => text
            .split(';')
            .filter_map(|part| {
                let mut words = part.split_whitespace();
                let name = words.next()?.to_owned();
                Some((name, words.map(str::to_owned).collect()))
            })
            .collect(),
        Value::Object(members) => members
            .iter()
            .map(|(name, sources)| {
                let sources = match sources {
                    Value::String(text) => text.split_whitespace().map(str::to_owned).collect(),
                    Value::Array(items) => {
                        items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
                    }
                    other => panic!("CSP directive {name}: unexpected {other}"),
                };
                (name.clone(), sources)
            })
            .collect(),
        other => panic!("CSP: unexpected {other}"),
    }
}

/// Problems with one CSP (`which` names it in the messages).
fn csp_problems(which: &str, csp: Option<&Value>) -> Vec<String> {
    let Some(csp) = csp.filter(|csp| !csp.is_null()) else {
        return vec![format!("{which}: no CSP (Tauri then allows everything)")];
    };
    let directives = csp_directives(csp);
    let mut problems = Vec::new();
    let find = |name: &str| directives.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone());
    if find("default-src").is_none() {
        problems.push(format!("{which}: no default-src"));
    }
    let scripts = find("script-src").or_else(|| find("default-src")).unwrap_or_default();
    if scripts.is_empty() {
        problems.push(format!("{which}: no script-src or default-src"));
    }
    if find("object-src").as_deref() != Some(&["'none'".to_owned()][..]) {
        problems.push(format!("{which}: object-src must be 'none'"));
    }
    for (name, sources) in &directives {
        for source in sources {
            let lower = source.to_ascii_lowercase();
            if lower.contains("unsafe-") {
                problems.push(format!("{which}: {name} allows {source}"));
            }
            if lower.contains('*') {
                problems.push(format!("{which}: {name} has a wildcard source {source}"));
            }
            // A bare scheme admits any host of it; only our own custom schemes are fine.
            if matches!(lower.as_str(), "http:" | "https:" | "ws:" | "wss:" | "blob:" | "filesystem:") {
                problems.push(format!("{which}: {name} allows any {source} address"));
            }
            let remote = (lower.starts_with("http://") || lower.starts_with("https://"))
                && !lower.ends_with(".localhost");
            if remote {
                problems.push(format!("{which}: {name} allows a remote origin {source}"));
            }
        }
        if (name == "script-src" || name == "default-src") && sources.iter().any(|s| s == "data:") {
            problems.push(format!("{which}: {name} allows data: scripts"));
        }
    }
    problems
}

/// Problems in tauri.conf.json.
fn config_problems(config: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let security = &config["app"]["security"];
    problems.extend(csp_problems("csp", security.get("csp")));
    if let Some(dev) = security.get("devCsp").filter(|v| !v.is_null()) {
        problems.extend(csp_problems("devCsp", Some(dev)));
    }
    if security["assetProtocol"]["enable"].as_bool() == Some(true) {
        problems.push("the asset protocol is enabled (it serves files from disk to the webview)".into());
    }
    for flag in ["dangerousDisableAssetCspModification", "dangerousRemoteDomainIpcAccess"] {
        if security.get(flag).is_some_and(|v| !v.is_null() && v != &Value::Bool(false)) {
            problems.push(format!("security.{flag} is set"));
        }
    }
    if let Some(plugins) = config.get("plugins").and_then(Value::as_object) {
        for name in plugins.keys() {
            if FORBIDDEN_PLUGINS.contains(&name.as_str()) {
                problems.push(format!("plugin {name} is configured"));
            }
        }
        if let Some(updater) = plugins.get("updater") {
            problems.extend(updater_problems(updater));
        }
    }
    for window in config["app"]["windows"].as_array().into_iter().flatten() {
        if let Some(url) = window.get("url").and_then(Value::as_str) {
            if url.contains("://") {
                problems.push(format!("window {} loads a remote page", window["label"]));
            }
        }
    }
    problems
}

/// Problems in one capability file.
fn capability_problems(name: &str, capability: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if capability.get("remote").is_some() {
        problems.push(format!("{name}: grants remote URLs access to the app's commands"));
    }
    for list in ["windows", "webviews"] {
        for label in capability.get(list).and_then(Value::as_array).into_iter().flatten() {
            if label.as_str().is_none_or(|label| label.contains('*')) {
                problems.push(format!("{name}: {list} has a wildcard or odd entry {label}"));
            }
        }
    }
    for permission in capability["permissions"].as_array().into_iter().flatten() {
        let identifier = match permission {
            Value::String(identifier) => identifier.as_str(),
            // A permission with a scope (allow/deny lists) is never on our list.
            Value::Object(members) => {
                problems.push(format!("{name}: a scoped permission {:?}", members.get("identifier")));
                continue;
            }
            other => {
                problems.push(format!("{name}: an odd permission {other}"));
                continue;
            }
        };
        if !ALLOWED_PERMISSIONS.iter().any(|(allowed, _)| *allowed == identifier) {
            problems.push(format!("{name}: permission {identifier} is not on the allow-list"));
        }
    }
    problems
}

/// Problems in the app's dependencies: a linked plugin counts even if not configured.
fn dependency_problems(manifest: &str, lock: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for plugin in FORBIDDEN_PLUGINS {
        let crate_name = format!("tauri-plugin-{plugin}");
        if manifest.contains(&crate_name) || lock.contains(&format!("name = \"{crate_name}\"")) {
            problems.push(format!("{crate_name} is a dependency"));
        }
    }
    if manifest.contains("protocol-asset") {
        problems.push("tauri's protocol-asset feature is on".into());
    }
    problems
}

fn all_problems() -> (Vec<String>, usize) {
    let mut problems = config_problems(&read_json(&root().join("tauri.conf.json")));
    let mut files = 1;
    for dir in ["capabilities", "src-tauri/capabilities"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                files += 1;
                problems.extend(capability_problems(&path.display().to_string(), &read_json(&path)));
            }
        }
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    problems.extend(dependency_problems(&manifest, &lock));
    (problems, files + 2)
}

#[test]
fn the_configuration_grants_nothing_beyond_the_allow_list() {
    let (problems, files) = all_problems();
    crate::write_figures(
        "config_lint.json",
        &serde_json::json!({ "config_problems": problems.len(), "files_checked": files, "problems": problems }),
    );
    assert!(problems.is_empty(), "configuration regressions:\n{}", problems.join("\n"));
}

/// The lint itself catches each regression it names (a lint that cannot fail proves nothing).
#[test]
fn the_lint_catches_each_regression() {
    let good = read_json(&root().join("tauri.conf.json"));
    assert!(config_problems(&good).is_empty());
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut config = good.clone();
        edit(&mut config);
        config_problems(&config)
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no CSP", with(&|c| c["app"]["security"]["csp"] = Value::Null)),
        (
            "unsafe-inline",
            with(&|c| c["app"]["security"]["csp"]["script-src"] = "'self' 'unsafe-inline'".into()),
        ),
        (
            "unsafe-eval as a string CSP",
            with(&|c| {
                c["app"]["security"]["csp"] =
                    "default-src 'self'; script-src 'self' 'unsafe-eval'; object-src 'none'".into()
            }),
        ),
        ("wildcard", with(&|c| c["app"]["security"]["csp"]["img-src"] = "'self' *".into())),
        (
            "remote origin",
            with(&|c| c["app"]["security"]["csp"]["connect-src"] = "'self' https://evil.example".into()),
        ),
        ("any https:", with(&|c| c["app"]["security"]["csp"]["script-src"] = "'self' https:".into())),
        ("asset protocol", with(&|c| c["app"]["security"]["assetProtocol"]["enable"] = true.into())),
        ("shell plugin", with(&|c| c["plugins"] = serde_json::json!({"shell": {"open": true}}))),
        (
            "updater without the signed version",
            with(&|c| c["plugins"]["updater"]["requireSignedVersion"] = false.into()),
        ),
        (
            "updater over http",
            with(&|c| c["plugins"]["updater"]["dangerousInsecureTransportProtocol"] = true.into()),
        ),
        ("updater downgrades", with(&|c| c["plugins"]["updater"]["allowDowngrades"] = true.into())),
        (
            "updater endpoints",
            with(&|c| {
                c["plugins"]["updater"]["endpoints"] = serde_json::json!(["https://evil.example/latest.json"])
            }),
        ),
    ];
    for (what, problems) in cases {
        assert!(!problems.is_empty(), "{what} was not caught");
    }
    let capability = |value: Value| capability_problems("test", &value);
    assert!(!capability(serde_json::json!({"windows": ["main"], "permissions": ["fs:default"]})).is_empty());
    assert!(!capability(serde_json::json!({"windows": ["*"], "permissions": []})).is_empty());
    assert!(!capability(
        serde_json::json!({"windows": ["main"], "remote": {"urls": ["https://*.example"]}, "permissions": []})
    )
    .is_empty());
    assert!(!capability(serde_json::json!({"windows": ["main"], "permissions": [{"identifier": "core:event:allow-listen", "allow": []}]})).is_empty());
    assert!(capability(serde_json::json!({"windows": ["main"], "permissions": ["core:event:allow-listen"]}))
        .is_empty());
    assert!(!dependency_problems("tauri-plugin-shell = \"2\"", "").is_empty());
    assert!(!dependency_problems("", "name = \"tauri-plugin-fs\"").is_empty());
}

/// Photos load in every webview: `img-src` and `connect-src` allow the photo URL in both of its
/// forms (`dermdesk_core::photos::photo_url_for`: WebView2's `http://photo.localhost/…` on
/// Windows, `photo://localhost/…` on Linux and macOS), and no window switches WebView2 to
/// `https://photo.localhost` (`useHttpsScheme`), a form `photo_url` does not make.
#[test]
fn the_csp_lets_every_webview_load_photos() {
    let config = read_json(&root().join("tauri.conf.json"));
    let directives = csp_directives(&config["app"]["security"]["csp"]);
    for windows_webview in [true, false] {
        let url = dermdesk_core::photos::photo_url_for(windows_webview, &"0".repeat(64));
        let scheme = url.split(':').next().unwrap();
        for directive in ["img-src", "connect-src"] {
            let (_, sources) = directives
                .iter()
                .find(|(name, _)| name == directive)
                .unwrap_or_else(|| panic!("no {directive} in the CSP"));
            let allowed = sources.iter().any(|source| {
                source == &format!("{scheme}:")
                    || url.starts_with(&format!("{}/", source.trim_end_matches('/')))
            });
            assert!(allowed, "{directive} {sources:?} does not allow {url}");
        }
    }
    for window in config["app"]["windows"].as_array().into_iter().flatten() {
        assert_ne!(
            window.get("useHttpsScheme"),
            Some(&Value::Bool(true)),
            "window {} serves custom schemes as https on Windows: photo_url makes http://photo.localhost",
            window["label"]
        );
    }
}
