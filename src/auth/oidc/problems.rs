//! What went wrong with a Gitea sign-in, said so that the person in front
//! of the sign-in page (or the operator reading it) knows what to fix.

use openidconnect::core::CoreErrorResponseType;
use openidconnect::{HttpClientError, RequestTokenError, StandardErrorResponse};

/// Why a sign-in did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Gitea sign-in is not set up in `[auth]`.
    Off(String),
    /// Gitea cannot be reached or does not accept opsdeck's settings: the
    /// operator has to act (audited as `failed`).
    Misconfigured(String),
    /// The `state` coming back is not one we sent, or was already used or
    /// too old: a forged, replayed or stale sign-in (audited as `denied`).
    UnknownState,
    /// The `state` is one we sent, but the callback came to a browser
    /// without the sign-in cookie `/auth/gitea` gave: a sign-in link
    /// completed somewhere else (sign-in CSRF) is never finished here.
    OtherBrowser,
    /// Gitea refused the code: already used, expired, or someone else's.
    CodeRefused(String),
    /// The id_token failed verification (signature, issuer, audience,
    /// expiry or nonce).
    BadIdToken(String),
    /// Gitea sent the user back with an error (e.g. they clicked "Cancel").
    Gitea(String),
}

impl Refusal {
    /// The sentence the sign-in page shows.
    pub fn message(&self) -> String {
        match self {
            Refusal::Off(why) | Refusal::Misconfigured(why) => why.clone(),
            Refusal::UnknownState => "This sign-in was not started here, was already used, or \
                 took longer than 10 minutes (unknown state). Start again with \"Sign in with Gitea\"."
                .into(),
            Refusal::OtherBrowser => "This sign-in was started in another browser (or this \
                 browser did not keep its sign-in cookie), so nobody was signed in here. If you \
                 meant to sign in, click \"Sign in with Gitea\" in this browser."
                .into(),
            Refusal::CodeRefused(why) => why.clone(),
            Refusal::BadIdToken(why) => {
                format!("Gitea's answer failed verification, so nobody was signed in: {why}")
            }
            Refusal::Gitea(why) => format!("Gitea did not sign you in: {why}"),
        }
    }

    /// True when opsdeck's setup is at fault rather than the sign-in attempt.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(self, Refusal::Off(_) | Refusal::Misconfigured(_))
    }
}

type ExchangeError = RequestTokenError<
    HttpClientError<reqwest::Error>,
    StandardErrorResponse<CoreErrorResponseType>,
>;

pub(super) fn exchange_refusal(e: ExchangeError) -> Refusal {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let detail = r
                .error_description()
                .map(|d| format!("{}: {d}", r.error()))
                .unwrap_or_else(|| r.error().to_string());
            match r.error() {
                CoreErrorResponseType::InvalidClient
                | CoreErrorResponseType::UnauthorizedClient => Refusal::Misconfigured(format!(
                    "Gitea refused opsdeck's client credentials when exchanging the sign-in \
                         code ({detail}). Check [auth] client_id and the client secret \
                         (client_secret_file or OPSDECK_CLIENT_SECRET) against the OAuth2 \
                         application in Gitea."
                )),
                CoreErrorResponseType::InvalidGrant => Refusal::CodeRefused(format!(
                    "Gitea refused the sign-in code ({detail}): it was already used, has expired \
                     or was issued to another application. Start again with \"Sign in with Gitea\"."
                )),
                _ => Refusal::Misconfigured(format!("Gitea refused the code exchange ({detail}).")),
            }
        }
        RequestTokenError::Request(e) => Refusal::Misconfigured(format!(
            "opsdeck cannot reach Gitea's token endpoint: {}",
            root_cause(&e)
        )),
        RequestTokenError::Parse(e, _) => Refusal::Misconfigured(format!(
            "Gitea's token endpoint answered something that is not a token response: {e}"
        )),
        RequestTokenError::Other(why) => Refusal::Misconfigured(format!(
            "Gitea's token endpoint answered unexpectedly: {why}"
        )),
    }
}

/// The innermost cause of an error: "Connection refused (os error 111)"
/// says more than "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

pub(super) fn unreachable(url: &str, e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "it did not answer within 10 seconds".to_string()
    } else {
        root_cause(e)
    };
    format!(
        "opsdeck cannot reach Gitea at {url}: {why}. Is [auth] gitea_url right and Gitea up? \
         opsdeck keeps retrying in the background; API tokens keep working meanwhile."
    )
}

pub(super) fn bad_discovery_status(url: &str, res: &reqwest::Response) -> String {
    let status = res.status();
    match res
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
    {
        Some(to) if status.is_redirection() => format!(
            "Gitea answered {url} with a redirect (HTTP {status}) to {to}; set [auth] gitea_url \
             to Gitea's ROOT_URL exactly, as its home page shows it, so no redirect is needed."
        ),
        _ => format!(
            "Gitea answered {url} with HTTP {status}; is [auth] gitea_url Gitea's ROOT_URL, and \
             is Gitea's OAuth2 provider enabled ([oauth2] ENABLED = true in app.ini)?"
        ),
    }
}

pub(super) fn issuer_mismatch(configured: &str, published: &str) -> String {
    format!(
        "Gitea's issuer does not match [auth] gitea_url: Gitea publishes the issuer \"{published}\", \
         but gitea_url is \"{configured}\". They must be identical, down to the trailing slash \
         (Gitea publishes its ROOT_URL with one). Set gitea_url = \"{published}\"."
    )
}
