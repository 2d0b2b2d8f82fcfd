//! Sign-in with Gitea over OpenID Connect: discovery from `auth.gitea_url`,
//! the authorization code flow with PKCE S256, state and nonce, and full
//! id_token verification. Gitea being down or misconfigured never stops
//! opsdeck: discovery is retried in the background and `status()` says,
//! in words an operator can act on, what is wrong meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    JsonWebKeySet, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::Config;

mod problems;
pub use problems::Refusal;

/// Fixed forever: Gitea drops a user's consent, and so breaks their next
/// sign-in, when an app asks for different scopes.
const SCOPES: [&str; 3] = ["profile", "email", "groups"];
/// How long a user may take on Gitea's pages between leaving and coming back.
const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// Sign-ins in flight at once; past it the oldest are the first to go.
const MAX_PENDING: usize = 1_000;
/// Slowest background retry of a failed discovery.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Gitea's extra id_token claim: its orgs (`org`) and teams (`org:team`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GiteaClaims {
    #[serde(default)]
    groups: Vec<String>,
}
impl AdditionalClaims for GiteaClaims {}

type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        GiteaClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

type GiteaClient = Client<
    GiteaClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Where Gitea sign-in stands, for the sign-in page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// `[auth]` does not set Gitea up (or its secret cannot be read): why.
    Off(String),
    /// The first discovery has not finished yet.
    Connecting,
    Ready,
    /// The last discovery failed: what went wrong, in an operator's words.
    Failed(String),
}

/// Who Gitea says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub login: String,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// Gitea sign-in, shared by every request; cheap to clone.
#[derive(Clone)]
pub struct Gitea {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Result<Settings, String>,
    http: reqwest::Client,
    status: RwLock<(Status, Option<Arc<GiteaClient>>)>,
    pending: Mutex<HashMap<String, Pending>>,
    wake: Arc<Notify>,
}

struct Settings {
    /// `auth.gitea_url` exactly as configured: the issuer must equal it.
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect: String,
}

/// A sign-in sent to Gitea and not back yet, keyed by its `state`.
pub struct Pending {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    next: String,
    started: Instant,
    /// The value of the browser's sign-in cookie: the `state` alone is in
    /// the URL, which an attacker can hand to someone else's browser.
    browser: String,
}

/// A sign-in that is starting: where to send the browser, and the value
/// of the cookie that binds the sign-in to it.
pub struct Started {
    pub url: String,
    pub browser: String,
}

/// How long the sign-in cookie lives: as long as a sign-in may take.
pub const SIGNIN_COOKIE_SECS: u64 = PENDING_TTL.as_secs();

impl Gitea {
    /// Reads `[auth]` and starts discovering Gitea in the background.
    pub fn start(config: &Config) -> Gitea {
        let settings = Settings::from_config(config);
        let status = match &settings {
            Ok(_) => Status::Connecting,
            Err(why) => Status::Off(why.clone()),
        };
        let http = reqwest::Client::builder()
            // Following redirects would let a token endpoint bounce our
            // client secret somewhere else (SSRF); Gitea never redirects here.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let inner = Arc::new(Inner {
            settings,
            http,
            status: RwLock::new((status, None)),
            pending: Mutex::default(),
            wake: Arc::new(Notify::new()),
        });
        if inner.settings.is_ok() {
            tokio::spawn(keep_discovering(Arc::downgrade(&inner)));
        }
        Gitea { inner }
    }

    pub fn status(&self) -> Status {
        self.inner.read().0.clone()
    }

    /// Asks the background task to retry a failed discovery now (someone is
    /// looking at the sign-in page) instead of at its next backoff step.
    pub fn nudge(&self) {
        if matches!(self.status(), Status::Failed(_)) {
            self.inner.wake.notify_one();
        }
    }

    /// Starts a sign-in: the URL of Gitea's authorization page to send the
    /// browser to, and the value of the cookie to give the browser with it
    /// (the sign-in only finishes in a browser that sends it back). `next`
    /// is where to go after coming back. `browser` is the sign-in cookie
    /// this browser already has, if any: kept, so that two sign-ins started
    /// in one browser (two tabs, a double click) both stay good.
    pub fn begin(&self, next: &str, browser: Option<&str>) -> Result<Started, Refusal> {
        let client = self.client()?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in SCOPES {
            request = request.add_scope(Scope::new(scope.to_string()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        let browser = browser
            .filter(|b| is_binding(b))
            .map_or_else(|| CsrfToken::new_random().secret().clone(), str::to_owned);
        pending.insert(
            state.secret().clone(),
            Pending {
                verifier,
                nonce,
                next: next.to_string(),
                started: Instant::now(),
                browser: browser.clone(),
            },
        );
        Ok(Started {
            url: url.to_string(),
            browser,
        })
    }

    /// The sign-in `state` names, if opsdeck issued it less than 10
    /// minutes ago to the browser whose sign-in cookie is `browser`. Used
    /// up either way: a `state` is good for one callback.
    pub fn claim(&self, state: &str, browser: Option<&str>) -> Result<Pending, Refusal> {
        let pending = {
            let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.remove(state)
        };
        let pending = pending
            .filter(|p| p.started.elapsed() < PENDING_TTL)
            .ok_or(Refusal::UnknownState)?;
        if !browser.is_some_and(|b| super::same_secret(b.as_bytes(), pending.browser.as_bytes())) {
            return Err(Refusal::OtherBrowser);
        }
        Ok(pending)
    }

    /// Finishes a sign-in Gitea sent back, once [`Gitea::claim`]ed:
    /// exchanges the code (with the PKCE verifier) and verifies the
    /// id_token (signature, issuer, audience, expiry, nonce). `iss` is the
    /// issuer the callback names when the provider sends one (RFC 9207;
    /// Gitea does not): it must be ours, so a code from another provider is
    /// never sent to Gitea. Returns who signed in and `next`.
    pub async fn finish(
        &self,
        pending: Pending,
        code: &str,
        iss: Option<&str>,
    ) -> Result<(Identity, String), Refusal> {
        let client = self.client()?;
        if let (Some(iss), Ok(settings)) = (iss, &self.inner.settings)
            && iss != settings.issuer
        {
            return Err(Refusal::BadIdToken(format!(
                "the sign-in came back from the issuer \"{iss}\", not from \"{}\"",
                settings.issuer
            )));
        }
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Refusal::Misconfigured(format!("Gitea publishes no token endpoint: {e}")))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.inner.http)
            .await
            .map_err(problems::exchange_refusal)?;
        let id_token = openidconnect::TokenResponse::id_token(&tokens)
            .ok_or_else(|| Refusal::BadIdToken("Gitea's answer carried no id_token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &pending.nonce)
            .map_err(|e| Refusal::BadIdToken(e.to_string()))?;
        let login = claims
            .preferred_username()
            .map(|u| u.as_str().to_string())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                Refusal::BadIdToken("the id_token has no preferred_username (login)".into())
            })?;
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string());
        let identity = Identity {
            login,
            name,
            groups: claims.additional_claims().groups.clone(),
        };
        Ok((identity, pending.next))
    }

    fn client(&self) -> Result<Arc<GiteaClient>, Refusal> {
        match &*self.inner.read() {
            (_, Some(client)) => Ok(client.clone()),
            (Status::Off(why), _) => Err(Refusal::Off(why.clone())),
            (Status::Failed(why), _) => Err(Refusal::Misconfigured(why.clone())),
            _ => Err(Refusal::Misconfigured(
                "opsdeck is still contacting Gitea; try again in a moment".into(),
            )),
        }
    }
}

/// What `CsrfToken::new_random` makes: 22 characters of base64url (16
/// random bytes). A cookie of another shape is not one of ours.
fn is_binding(value: &str) -> bool {
    value.len() == 22
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Inner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Status, Option<Arc<GiteaClient>>)> {
        self.status.read().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, status: Status, client: Option<Arc<GiteaClient>>) {
        *self.status.write().unwrap_or_else(|e| e.into_inner()) = (status, client);
    }
}

impl Settings {
    fn from_config(config: &Config) -> Result<Settings, String> {
        let auth = &config.auth;
        let issuer = auth.gitea_url.clone().ok_or(
            "Gitea sign-in is not set up: [auth] gitea_url is missing (see README, \"Connect to Gitea\")",
        )?;
        let client_id = auth.client_id.clone().ok_or(
            "Gitea sign-in is not set up: [auth] client_id is missing (see README, \"Connect to Gitea\")",
        )?;
        let client_secret = match std::env::var("OPSDECK_CLIENT_SECRET") {
            Ok(secret) => secret,
            Err(_) => {
                let file = auth.client_secret_file.as_ref().ok_or(
                    "Gitea sign-in is not set up: set [auth] client_secret_file or OPSDECK_CLIENT_SECRET",
                )?;
                std::fs::read_to_string(file).map_err(|e| {
                    format!(
                        "cannot read the Gitea client secret from [auth] client_secret_file {}: {e}",
                        file.display()
                    )
                })?
            }
        };
        let client_secret = client_secret.trim().to_string();
        if client_secret.is_empty() {
            return Err("the Gitea client secret is empty".into());
        }
        let redirect = format!(
            "{}/auth/callback",
            config.server.public_url.trim_end_matches('/')
        );
        Ok(Settings {
            issuer,
            client_id,
            client_secret,
            redirect,
        })
    }
}

/// Discovers Gitea until it works, backing off from 1 s to `MAX_RETRY`
/// (or sooner when nudged); ends when opsdeck drops its `Gitea`.
async fn keep_discovering(inner: Weak<Inner>) {
    let mut delay = Duration::from_secs(1);
    loop {
        let Some(gitea) = inner.upgrade() else { return };
        let Ok(settings) = &gitea.settings else {
            return;
        };
        match discover(&gitea.http, settings).await {
            Ok(client) => {
                tracing::info!(issuer = %settings.issuer, "Gitea sign-in is ready");
                gitea.set(Status::Ready, Some(Arc::new(client)));
                return;
            }
            Err(why) => {
                tracing::warn!(problem = %why, retry_in = ?delay, "Gitea sign-in is not available");
                gitea.set(Status::Failed(why), None);
            }
        }
        // Not holding `gitea` while waiting lets opsdeck drop it.
        let wake = gitea.wake.clone();
        drop(gitea);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = wake.notified() => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// Fetches Gitea's discovery document and keys; the error is the sentence
/// the sign-in page shows.
async fn discover(http: &reqwest::Client, s: &Settings) -> Result<GiteaClient, String> {
    let issuer = IssuerUrl::new(s.issuer.clone())
        .map_err(|e| format!("[auth] gitea_url {:?} is not a URL: {e}", s.issuer))?;
    let url = issuer
        .join(".well-known/openid-configuration")
        .map_err(|e| format!("[auth] gitea_url {:?} is not a URL: {e}", s.issuer))?;
    let res = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| problems::unreachable(url.as_str(), &e))?;
    let status = res.status();
    if !status.is_success() {
        return Err(problems::bad_discovery_status(url.as_str(), &res));
    }
    let metadata: CoreProviderMetadata = res.json().await.map_err(|e| {
        format!("{url} (HTTP {status}) is not an OpenID Connect discovery document: {e}")
    })?;
    let published = metadata.issuer().as_str();
    if published != s.issuer {
        return Err(problems::issuer_mismatch(&s.issuer, published));
    }
    let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
        .await
        .map_err(|e| {
            format!(
                "cannot fetch Gitea's signing keys from {}: {e}",
                metadata.jwks_uri().as_str()
            )
        })?;
    let redirect = RedirectUrl::new(s.redirect.clone()).map_err(|e| {
        format!(
            "[server] public_url gives no valid callback URL {:?}: {e}",
            s.redirect
        )
    })?;
    Ok(GiteaClient::from_provider_metadata(
        metadata.set_jwks(jwks),
        ClientId::new(s.client_id.clone()),
        Some(ClientSecret::new(s.client_secret.clone())),
    )
    .set_redirect_uri(redirect))
}
