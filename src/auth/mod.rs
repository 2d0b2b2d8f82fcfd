//! Who is asking: roles, the actor of a request, and how it was authenticated.

pub mod limit;
pub mod oidc;
pub mod roles;
pub mod session;
pub mod token;

pub use crate::actor::{Actor, Role, Via};

/// Whether a secret a client sent (a CSRF token, a sign-in cookie) is the
/// one expected; in constant time, so response timing does not leak it
/// byte by byte. An empty expectation matches nothing.
pub fn same_secret(sent: &[u8], expected: &[u8]) -> bool {
    !expected.is_empty()
        && sent.len() == expected.len()
        && sent
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Handlers take `Actor` as an extractor. The `web` authentication middleware
/// puts the signed-in actor into the request extensions; no actor → 401.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Actor {
    type Rejection = crate::Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Actor, crate::Error> {
        parts.extensions.get::<Actor>().cloned().ok_or_else(|| {
            crate::Error::Unauthorized(
                "sign in first, or send an API token as `Authorization: Bearer <token>`".into(),
            )
        })
    }
}
