// A real, certified OpenID provider (panva/oidc-provider) set up the way
// Gitea answers: Gitea's endpoint paths, `sub` = numeric user id, the
// `groups` claim (`org`, `org:team`) in the id_token, PKCE S256 required,
// RS256 only, confidential clients with basic or post auth.
//
// Configured by environment (the Rust test support sets it):
//   PORT     port to listen on (127.0.0.1)
//   ISSUER   the issuer it publishes; Gitea's ROOT_URL ends with a slash
//   CLIENTS  JSON [{client_id, client_secret, redirect_uris}]
//   USERS    JSON {login: {id, name, email, groups}}
// Prints `ready <port>` on stdout once it accepts connections.
//
// Sign-in pages: `/interaction/<uid>` finishes at once when the sign-in
// request carried `login_hint=<login>` (what API-level tests use), and
// otherwise shows a "Sign in to Gitea" form (what the browser test fills in).

import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = process.env.ISSUER;
const clients = JSON.parse(process.env.CLIENTS);
const users = JSON.parse(process.env.USERS);
const byId = new Map(Object.entries(users).map(([login, u]) => [String(u.id), { login, ...u }]));

const provider = new Provider(issuer, {
  clients: clients.map((c) => ({
    ...c,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  routes: {
    authorization: '/login/oauth/authorize',
    token: '/login/oauth/access_token',
    userinfo: '/login/oauth/userinfo',
    jwks: '/login/oauth/keys',
    introspection: '/login/oauth/introspect',
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'nickname', 'picture', 'website', 'locale', 'updated_at'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Gitea puts the scope's claims into the id_token itself.
  conformIdTokenClaims: false,
  responseTypes: ['code'],
  pkce: { required: () => true },
  enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
  issueRefreshToken: () => true,
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
  },
  cookies: { keys: ['opsdeck-tests-only'] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => {
    const user = byId.get(String(id));
    if (!user) return undefined;
    return {
      accountId: String(id),
      claims: async () => ({
        sub: String(id),
        name: user.name ?? user.login,
        preferred_username: user.login,
        email: user.email ?? `${user.login}@example.org`,
        email_verified: true,
        // Gitea leaves the claim out when the user is in no org.
        ...(user.groups?.length ? { groups: user.groups } : {}),
      }),
    };
  },
  // Consent is implied, as for a Gitea app the user already authorised.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    await grant.save();
    return grant;
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(res, uid, error) {
  res.writeHead(error ? 401 : 200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Sign In - Gitea</title></head><body>
<h1>Sign in to Gitea</h1>
${error ? `<p class="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Username <input id="user_name" name="login" autofocus></label>
<button id="sign-in" type="submit">Sign In</button>
</form></body></html>`);
}

async function finish(req, res, login) {
  await provider.interactionFinished(req, res, { login: { accountId: String(users[login].id) } }, {
    mergeWithLastSubmission: false,
  });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (action === 'login' && req.method === 'POST') {
    let body = '';
    for await (const chunk of req) body += chunk;
    const login = new URLSearchParams(body).get('login') ?? '';
    if (!users[login]) return loginPage(res, uid, `No user named "${login}".`);
    return finish(req, res, login);
  }
  const hint = details.params.login_hint;
  if (hint && users[hint]) return finish(req, res, hint);
  return loginPage(res, uid);
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const m = /^\/interaction\/([^/?]+)(?:\/(login))?/.exec(req.url);
  if (!m) return callback(req, res);
  interaction(req, res, m[1], m[2]).catch((err) => {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction failed: ${err.message}`);
  });
});
server.listen(port, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
