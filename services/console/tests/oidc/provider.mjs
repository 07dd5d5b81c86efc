// The OpenID Connect provider the console's sign-in test (../oidc.rs) signs in against: the
// certified `oidc-provider` package, configured like an organisation's identity provider.
//
// - Listens on 127.0.0.1, a free port; its issuer is http://127.0.0.1:<port> (a loopback
//   issuer, so plain http).
// - One confidential client (the console): code flow only, PKCE with S256 required,
//   client_secret_basic, the redirect URIs given by the test.
// - Access tokens are JWTs (RFC 9068) for one resource server, the Tryggdel services, with the
//   audience the services verify and the user's identity under HSA-like claim names, which
//   the test maps with the console's claim-name configuration.
// - ID tokens are signed RS256 with the provider's own keys, published at its jwks_uri; access
//   tokens EdDSA.
// - The login interaction completes by itself for the one account (no form to fill in):
//   the test is about the console's side of the flow, not the provider's pages.
//
// Usage: node provider.mjs '<settings JSON>' where settings are
//   { "client_id", "client_secret", "redirect_uris": [..], "resource", "audience",
//     "scope", "account": { "id", claims... } }
// Prints one line `{"issuer": "http://127.0.0.1:<port>"}` once it listens, and exits when its
// standard input closes (the test ended), so it never outlives the test.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

const settings = JSON.parse(process.argv[2] ?? '{}');
for (const key of ['client_id', 'client_secret', 'redirect_uris', 'resource', 'audience', 'scope', 'account']) {
  if (settings[key] === undefined) {
    console.error(`provider.mjs: settings lack ${key}`);
    process.exit(2);
  }
}

function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg.toLowerCase()}-${randomUUID()}`, alg, use: 'sig' };
}

const keys = [
  signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
  signingKey('ed25519', {}, 'EdDSA'),
];

const account = settings.account;

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: settings.client_id,
      client_secret: settings.client_secret,
      redirect_uris: settings.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys },
    pkce: {
      required: () => true,
    },
    scopes: ['openid', settings.scope],
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => settings.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== settings.resource) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: settings.scope,
            audience: settings.audience,
            accessTokenTTL: 10 * 60,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'EdDSA' } },
          };
        },
      },
    },
    findAccount: (_ctx, id) => {
      if (id !== account.id) {
        return undefined;
      }
      return {
        accountId: id,
        claims: () => ({ sub: id }),
      };
    },
    extraTokenClaims: (_ctx, token) => {
      if (token.kind !== 'AccessToken' || token.accountId !== account.id) {
        return undefined;
      }
      const { id: _, ...claims } = account;
      return claims;
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    renderError: (ctx, out) => {
      ctx.type = 'text/plain';
      ctx.body = `${out.error}: ${out.error_description ?? ''}`;
    },
  });

  // The interaction: log the one account in, and grant what the client asked for.
  provider.use(async (ctx, next) => {
    const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
    if (!match || ctx.method !== 'GET') {
      return next();
    }
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name === 'login') {
      await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: account.id } }, { mergeWithLastSubmission: false });
      return undefined;
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) {
      grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    }
    if (missing.missingOIDCClaims) {
      grant.addOIDCClaims(missing.missingOIDCClaims);
    }
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return undefined;
  });

  provider.on('server_error', (_ctx, error) => console.error('provider.mjs: server error', error));
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
