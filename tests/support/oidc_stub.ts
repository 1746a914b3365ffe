/**
 * A minimal OpenID Connect provider over real HTTP on 127.0.0.1, for single sign-on tests: discovery, an
 * authorization endpoint that signs in whoever the test says, a token endpoint that checks the PKCE verifier,
 * and RS256-signed ID tokens (jose).
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";

/** Who the provider says is signing in. */
export interface OidcIdentity {
  email: string;
  /** Left out of the ID token when null (some providers omit the claim); true when not given. */
  emailVerified?: boolean | null;
  name?: string;
}

/** A running provider. */
export interface OidcStub {
  issuer: string;
  clientId: string;
  /** The identity the next authorization signs in. */
  identity: OidcIdentity;
  /** Sign the next ID token with another key (an attacker's). */
  forgeNext: boolean;
  close(): Promise<void>;
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** Starts the provider. */
export async function startOidcStub(clientId = "rounds-test"): Promise<OidcStub> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const forger = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const codes = new Map<
    string,
    { nonce: string; challenge: string; redirect: string; identity: OidcIdentity }
  >();
  let issuer = "";
  const stub: OidcStub = {
    issuer: "",
    clientId,
    identity: { email: "sso@example.test" },
    forgeNext: false,
    close: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/.well-known/openid-configuration") {
      return Response.json({
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: ["none", "client_secret_basic", "client_secret_post"],
      });
    }
    if (url.pathname === "/jwks") return Response.json({ keys: [jwk] });
    if (url.pathname === "/authorize") {
      const q = url.searchParams;
      if (q.get("client_id") !== clientId || q.get("code_challenge_method") !== "S256") {
        return new Response("bad request", { status: 400 });
      }
      const code = crypto.randomUUID();
      codes.set(code, {
        nonce: q.get("nonce") ?? "",
        challenge: q.get("code_challenge") ?? "",
        redirect: q.get("redirect_uri") ?? "",
        identity: stub.identity,
      });
      const back = new URL(q.get("redirect_uri")!);
      back.searchParams.set("code", code);
      back.searchParams.set("state", q.get("state") ?? "");
      back.searchParams.set("iss", issuer);
      return Response.redirect(back.href, 302);
    }
    if (url.pathname === "/token" && request.method === "POST") {
      const form = new URLSearchParams(await request.text());
      const grant = codes.get(form.get("code") ?? "");
      codes.delete(form.get("code") ?? "");
      if (
        !grant || form.get("redirect_uri") !== grant.redirect ||
        await challengeOf(form.get("code_verifier") ?? "") !== grant.challenge
      ) {
        return Response.json({ error: "invalid_grant" }, { status: 400 });
      }
      const key = stub.forgeNext ? forger.privateKey : privateKey;
      stub.forgeNext = false;
      const idToken = await new SignJWT({
        email: grant.identity.email,
        ...(grant.identity.emailVerified === null
          ? {}
          : { email_verified: grant.identity.emailVerified ?? true }),
        name: grant.identity.name,
        nonce: grant.nonce,
      }).setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuer(issuer).setAudience(clientId)
        .setSubject(grant.identity.email).setIssuedAt().setExpirationTime("5m").sign(key);
      return Response.json({
        access_token: crypto.randomUUID(),
        token_type: "Bearer",
        id_token: idToken,
        expires_in: 300,
      });
    }
    return new Response("not found", { status: 404 });
  });
  issuer = `http://127.0.0.1:${server.addr.port}`;
  stub.issuer = issuer;
  return stub;
}
