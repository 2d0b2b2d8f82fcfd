//! Every config in deploy/examples/ (one per runbook the product replaces,
//! shipped in the .deb's examples) loads without errors: a key renamed or a
//! rule tightened in the config code shows here, not on an operator's host.

use std::path::PathBuf;

use opsdeck::config::Config;

#[test]
fn every_example_config_loads_without_errors() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("sitg.toml")),
        "no examples in {}: {files:?}",
        dir.display()
    );
    // The examples name opsdeck's own secret files on the host (the Gitea
    // client secret and token, webhook secrets), which this machine does
    // not have: each is made, 0600, under a temporary /etc/opsdeck, and the
    // text changed in those paths only.
    let etc = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let text = with_secret_files(&text, etc.path());
        if let Err(e) = Config::parse(&text, file) {
            failed.push(e.to_string());
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// `text` with `/etc/opsdeck/` moved to `etc`, where each file it names
/// now exists and holds a stand-in secret.
fn with_secret_files(text: &str, etc: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    const ETC: &str = "/etc/opsdeck/";
    for (at, _) in text.match_indices(ETC) {
        let rest = &text[at + ETC.len()..];
        let name = &rest[..rest.find('"').unwrap_or(rest.len())];
        let path = etc.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "example-secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    text.replace(ETC, &format!("{}/", etc.display()))
}
