// A real OpenID provider for the tests and the demo (npm "oidc-provider", certified).
// Settings from the environment:
//   OIDC_PORT      port to listen on (127.0.0.1)
//   OIDC_ISSUER    the issuer (may be a proxy in front of this port; default http://127.0.0.1:PORT)
//   OIDC_CLIENTS   JSON list of {client_id, client_secret, redirect_uris, post_logout_redirect_uris}
//   OIDC_JWKS      optional path of a JSON {keys: [private JWK]} to sign with (tests re-sign with it)
// The development login page accepts any login: "alice" becomes alice@example.org (verified);
// a login with an "@" is used as the e-mail address; one starting with "unverified-" is
// reported with email_verified false. The password is ignored.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 9400);
const issuer = process.env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]').map((c) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));

function emailOf(id) {
  const login = id.replace(/^unverified-/, '');
  return login.includes('@') ? login.toLowerCase() : `${login.toLowerCase()}@example.org`;
}

const configuration = {
  clients,
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  cookies: { keys: ['consensus-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: emailOf(id),
          email_verified: !id.startsWith('unverified-'),
          name: id,
        };
      },
    };
  },
};
if (process.env.OIDC_JWKS) {
  configuration.jwks = JSON.parse(fs.readFileSync(process.env.OIDC_JWKS, 'utf8'));
}

const provider = new Provider(issuer, configuration);
provider.proxy = true;
provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ready at ${issuer} (listening on 127.0.0.1:${port})`);
});
