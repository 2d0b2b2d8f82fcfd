//! Who asks: an [`Actor`] (a signed-in person, an API token, the scheduler,
//! a Gitea push) and their [`Role`]. Below both `config` (which maps roles
//! to permissions) and `auth` (which finds out who is asking), so neither
//! depends on the other for them.

use serde::{Deserialize, Serialize};

/// Roles in increasing power; `owner > admin > operator > viewer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// DESIGN.md's default minimum role per action.
    pub fn default_for(action: &str) -> Role {
        match action {
            "view" => Role::Viewer,
            "logs" | "rollback" | "sweep" | "action" | "cancel" | "hosts" => Role::Operator,
            "deploy" | "audit" | "sessions" | "notifications" => Role::Admin,
            // rotate, restore (a database put back), and anything unknown:
            // only the most trusted.
            _ => Role::Owner,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an actor proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Session,
    Token,
    System,
}

/// The person or system behind a request or a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `ben`, `token:ci`, `system:scheduler`, `gitea:<pusher>`.
    pub login: String,
    pub role: Role,
    pub via: Via,
    /// The client address the request came from ("" for system actors).
    pub remote: String,
}

impl Actor {
    pub fn system(login: &str) -> Actor {
        Actor {
            login: login.to_string(),
            role: Role::Owner,
            via: Via::System,
            remote: String::new(),
        }
    }

    /// Whether `login` (say, who asked for a job) is this same person: a
    /// push by `gitea:ben` and a session of `ben` are one Gitea account —
    /// sessions are Gitea sign-ins — so four eyes must count them once.
    pub fn is(&self, login: &str) -> bool {
        person(&self.login) == person(login)
    }
}

/// The Gitea account behind a login, as sessions name it.
fn person(login: &str) -> &str {
    login.strip_prefix("gitea:").unwrap_or(login)
}
