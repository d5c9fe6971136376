//! The installed product has no demo in it: the app built without its default `demo` feature
//! (what a bundle is built with) links neither the reference hub (its fault injection, its
//! admin API, axum) nor the synthetic photo generator, nor clap. Read from cargo's own
//! resolution of the dependency tree, so a new path to any of them fails here.

use std::collections::BTreeSet;
use std::process::Command;

/// The crates in the normal (linked) dependency tree of the app with `features`.
fn linked_crates(features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let output = Command::new(cargo)
        .args(["tree", "--manifest-path", manifest, "--package", "dermdesk", "--edges", "normal"])
        .args(["--prefix", "none", "--format", "{p}", "--locked", "--offline"])
        .args(features)
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

const DEMO_ONLY: &[&str] = &["dermdesk-hub", "dermdesk-synth", "axum", "clap"];

#[test]
fn the_product_build_links_no_demo_crate() {
    let product = linked_crates(&["--no-default-features"]);
    assert!(
        product.contains("dermdesk-core") && product.contains("tauri"),
        "not the app's tree: {product:?}"
    );
    let found: Vec<&str> = DEMO_ONLY.iter().copied().filter(|name| product.contains(*name)).collect();
    assert!(found.is_empty(), "the product build links {found:?}");
}

#[test]
fn the_development_build_has_the_demo() {
    // The check above means something only if the feature is what brings these in.
    let development = linked_crates(&[]);
    for name in ["dermdesk-hub", "dermdesk-synth"] {
        assert!(development.contains(name), "{name} missing from the default build: {development:?}");
    }
}
