// node's jose verifying tokend access tokens from the jwks_uri it read in
// the discovery document, requiring `typ: at+jwt` (RFC 9068).
//
// Reads JSON on stdin: base, access, refresh. Prints the verified claims;
// exits non-zero when the access token is refused or the refresh token
// accepted.

import { createRemoteJWKSet, jwtVerify } from "jose";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const data = JSON.parse(input);

const resp = await fetch(`${data.base}/.well-known/oauth-authorization-server`);
if (!resp.ok) throw new Error(`discovery answered ${resp.status}`);
const meta = await resp.json();
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
const options = { issuer: meta.issuer, typ: "at+jwt", requiredClaims: ["exp", "iat", "sub", "jti", "client_id"] };

const { payload } = await jwtVerify(data.access, jwks, options);

let refused = false;
try {
  await jwtVerify(data.refresh, jwks, options);
} catch (e) {
  refused = e.code === "ERR_JWT_CLAIM_VALIDATION_FAILED" && e.claim === "typ";
  if (!refused) throw e;
}
if (!refused) {
  console.error("jose accepted a refresh token as an access token");
  process.exit(1);
}
console.log(JSON.stringify(payload));
