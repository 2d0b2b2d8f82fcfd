//! Which role a Gitea account gets: `[roles]` entries `user:<login>`,
//! `org:<org>` and `team:<org>:<team>`, matched against the login and
//! Gitea's `groups` claim (`org` for each org, `org:team` for each team).
//! The highest matching role wins; no match means no access.

use super::Role;
use crate::config::Roles;

/// The role `login` with `groups` gets, or None when no entry matches.
/// Gitea names are case-insensitive (and it lower-cases team names in
/// `groups`), so the comparison is too.
pub fn role_for(roles: &Roles, login: &str, groups: &[String]) -> Option<Role> {
    Role::ALL.into_iter().rev().find(|role| {
        entries(roles, *role)
            .iter()
            .any(|e| matches(e, login, groups))
    })
}

fn entries(roles: &Roles, role: Role) -> &[String] {
    match role {
        Role::Owner => &roles.owner,
        Role::Admin => &roles.admin,
        Role::Operator => &roles.operator,
        Role::Viewer => &roles.viewer,
    }
}

fn matches(entry: &str, login: &str, groups: &[String]) -> bool {
    let in_groups = |name: &str| groups.iter().any(|g| g.eq_ignore_ascii_case(name));
    match entry.split_once(':') {
        Some(("user", user)) => user.eq_ignore_ascii_case(login),
        Some(("org", org)) => !org.contains(':') && in_groups(org),
        Some(("team", team)) => team.contains(':') && in_groups(team),
        _ => false,
    }
}

/// The `[roles]` entries that would let this account in, for the "no role"
/// page: its own `user:` entry, then one per group it belongs to.
pub fn possible_entries(login: &str, groups: &[String]) -> Vec<String> {
    std::iter::once(format!("user:{login}"))
        .chain(groups.iter().map(|g| {
            if g.contains(':') {
                format!("team:{g}")
            } else {
                format!("org:{g}")
            }
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Roles {
        Roles {
            owner: vec!["user:Ben".into()],
            admin: vec!["team:wiggleverse:admins".into()],
            operator: vec!["org:wiggleverse".into()],
            viewer: vec![],
        }
    }

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn highest_match_wins() {
        let g = groups(&["wiggleverse", "wiggleverse:admins"]);
        assert_eq!(role_for(&roles(), "ben", &g), Some(Role::Owner));
        assert_eq!(role_for(&roles(), "ann", &g), Some(Role::Admin));
        assert_eq!(
            role_for(&roles(), "ann", &groups(&["wiggleverse"])),
            Some(Role::Operator)
        );
    }

    #[test]
    fn no_match_is_no_role() {
        assert_eq!(role_for(&roles(), "eve", &[]), None);
        // An org entry does not match a team of another org, nor a team entry an org.
        assert_eq!(
            role_for(&roles(), "eve", &groups(&["other:wiggleverse"])),
            None
        );
        let r = Roles {
            admin: vec!["team:wiggleverse".into(), "org:a:b".into(), "bogus".into()],
            ..Roles::default()
        };
        assert_eq!(role_for(&r, "eve", &groups(&["wiggleverse", "a:b"])), None);
    }
}
