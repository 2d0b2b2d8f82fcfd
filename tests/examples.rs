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
    // The examples name the Gitea client secret's and GitHub token's files
    // on the host, which this machine does not have; the variables that
    // override them stand in.
    // SAFETY: the only test of this binary; nothing else reads the
    // environment meanwhile.
    unsafe {
        std::env::set_var("OPSDECK_CLIENT_SECRET", "example");
        std::env::set_var("OPSDECK_GITHUB_TOKEN", "example");
    }
    let mut failed = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        if let Err(e) = Config::parse(&text, file) {
            failed.push(e.to_string());
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
