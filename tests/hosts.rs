//! The hosts page against a real sshd: a reachable host shows its latency,
//! systemd state and free disk where its app lives; a host whose key
//! changed shows as unreachable with ssh's reason and the fix; viewers are
//! refused.

mod support;

use opsdeck::auth::Role;
use support::server::{json, start};
use support::sshd::Sshd;

#[tokio::test]
async fn the_hosts_page_shows_each_host_reachable_or_why_not() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app_dir = dir.path().join("web app");
    std::fs::create_dir(&app_dir).unwrap();
    let impostor = dir.path().join("known_hosts_impostor");
    sshd.write_known_hosts(&impostor, &sshd.other_key("impostor"));
    let config = format!(
        "{}\n{}\n[[app]]\nname = \"web\"\nhost = \"remote\"\nrepo = {:?}\n\n\
         [[app]]\nname = \"ghost\"\nhost = \"moved\"\n",
        sshd.hosts_toml(&sshd.known_hosts()),
        sshd.hosts_toml(&impostor)
            .replace("[hosts.remote]", "[hosts.moved]"),
        app_dir.display().to_string(),
    );
    let s = start(&config).await;

    let hosts = json(
        s.get_as("/api/hosts", &s.token("ops", Role::Operator).await)
            .await,
    )
    .await;
    let remote = &hosts[0];
    assert_eq!(remote["name"], "moved", "{hosts}");
    assert!(
        remote["error"]
            .as_str()
            .unwrap()
            .contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{hosts}"
    );
    let reachable = &hosts[1];
    assert_eq!(reachable["name"], "remote");
    assert_eq!(reachable["error"], serde_json::Value::Null, "{hosts}");
    assert_eq!(reachable["apps"][0], "web");
    assert!(reachable["latency_ms"].as_u64().is_some());
    assert!(reachable["systemd"].is_string());
    let disk = &reachable["disks"][0];
    assert_eq!(disk["path"], app_dir.display().to_string());
    assert!(disk["free_bytes"].as_u64().unwrap() > 0, "{disk}");

    // The page says the same to a person.
    let (cookie, _) = s.session("ann", Role::Operator).await;
    let html = s.browse("/hosts", &cookie).await.text().await.unwrap();
    assert!(
        html.contains("unreachable") && html.contains("ssh-keyscan"),
        "{html}"
    );
    assert!(html.contains("GiB free of"), "{html}");
    assert!(html.contains("web app"), "{html}");

    let (viewer, _) = s.session("vic", Role::Viewer).await;
    assert_eq!(s.browse("/hosts", &viewer).await.status(), 403);
}
