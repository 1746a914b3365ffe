/**
 * Single sign-on with OpenID Connect (openid-client): authorization code flow with PKCE, state and nonce. The
 * provider vouches for an email; Rounds signs in the enabled local account with that email (or creates one with
 * OIDC_CREATE_USERS_AS). Roles, disabling and the audit log stay Rounds' own.
 */
import { type Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import * as oidc from "openid-client";
import type { OidcConfig } from "../config.ts";
import { recordAudit } from "../db/audit.ts";
import { createUser, findUserByEmail, normaliseEmail } from "../db/users.ts";
import { loginPage } from "../views/auth.tsx";
import { type AuthDeps, clientAddress, isLocalHttp, safeNext, signIn } from "./auth.ts";

const FLOW_COOKIE = "rounds_sso";
/** How long a sign-in at the provider may take. */
const FLOW_SECONDS = 600;

/** What the SSO routes need besides the account routes' deps. */
export interface SsoDeps extends Omit<AuthDeps, "guard"> {
  oidc: Readonly<OidcConfig>;
}

/** A password hash no password matches: SSO-only accounts. */
const NO_PASSWORD = "sso-only";

function isLoopback(url: string): boolean {
  return /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(\/|$)/.test(url);
}

/** The SSO routes: /login/sso starts, /login/sso/callback finishes. */
export function ssoRoutes(deps: SsoDeps): Hono {
  const app = new Hono();
  const settings = deps.oidc;
  let discovered: Promise<oidc.Configuration> | null = null;

  const configuration = (): Promise<oidc.Configuration> => {
    discovered ??= oidc.discovery(
      new URL(settings.issuer),
      settings.clientId,
      settings.clientSecret ?? undefined,
      settings.clientSecret ? undefined : oidc.None(),
      {
        // Plain HTTP only for a provider on this machine (config refuses it elsewhere).
        // Signatures of ID tokens are checked too, though they come straight from the token endpoint.
        execute: isLoopback(settings.issuer)
          ? [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks]
          : [oidc.enableNonRepudiationChecks],
      },
    ).catch((error) => {
      discovered = null; // try again next time
      throw error;
    });
    return discovered;
  };

  const redirectUri = (c: Context) =>
    settings.redirectUri ?? `${new URL(c.req.url).origin}/login/sso/callback`;

  const refuse = (c: Context, error: string, status: 400 | 403 | 502 = 403) =>
    c.html(loginPage(deps.pageContext(c), { email: "", next: "/", error, sso: settings.label }), status);

  app.get("/login/sso", async (c) => {
    let config: oidc.Configuration;
    try {
      config = await configuration();
    } catch (error) {
      console.error(`single sign-on: cannot read ${settings.issuer}:`, (error as Error).message);
      return refuse(
        c,
        `Single sign-on is not reachable right now (${settings.label}). Try again, or sign in with a password.`,
        502,
      );
    }
    const verifier = oidc.randomPKCECodeVerifier();
    const flow = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      verifier,
      next: safeNext(c.req.query("next")),
    };
    setCookie(c, FLOW_COOKIE, btoa(JSON.stringify(flow)), {
      httpOnly: true,
      secure: !isLocalHttp(c, deps.security.trustProxy),
      // The provider sends the browser back with a top-level GET: Lax cookies come along.
      sameSite: "Lax",
      path: "/login/sso",
      maxAge: FLOW_SECONDS,
    });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri(c),
      scope: "openid email profile",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state: flow.state,
      nonce: flow.nonce,
    });
    return c.redirect(url.href, 302);
  });

  app.get("/login/sso/callback", async (c) => {
    const address = clientAddress(c, deps.security.trustProxy);
    let flow: { state: string; nonce: string; verifier: string; next: string };
    try {
      flow = JSON.parse(atob(getCookie(c, FLOW_COOKIE) ?? ""));
      if (typeof flow.state !== "string" || typeof flow.verifier !== "string") throw new Error("incomplete");
    } catch {
      return refuse(c, "This sign-in has expired or was started in another browser. Start again.", 400);
    }
    deleteCookie(c, FLOW_COOKIE, { path: "/login/sso", secure: !isLocalHttp(c, deps.security.trustProxy) });
    const providerError = c.req.query("error");
    if (providerError) {
      await recordAudit(deps.db, {
        requestId: c.get("requestId"),
        actor: "anonymous",
        action: "login.failed",
        address,
        outcome: `sso: ${providerError.slice(0, 60)}`,
      });
      return refuse(c, `${settings.label} did not sign you in (${providerError.slice(0, 100)}).`);
    }
    let claims: oidc.IDToken | undefined;
    try {
      const config = await configuration();
      // The callback URL as the provider saw it (behind a proxy the request's own origin may differ).
      const current = new URL(redirectUri(c));
      current.search = new URL(c.req.url).search;
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims();
    } catch (error) {
      await recordAudit(deps.db, {
        requestId: c.get("requestId"),
        actor: "anonymous",
        action: "login.failed",
        address,
        outcome: "sso: invalid response",
      });
      console.error("single sign-on: the provider's answer was refused:", (error as Error).message);
      return refuse(c, `The answer from ${settings.label} could not be verified. Start again.`);
    }
    const email = typeof claims?.email === "string" ? normaliseEmail(claims.email) : null;
    // Only an address the provider vouches for: a missing email_verified is not a yes (an account, an
    // administrator's included, must never be taken over by whoever registers its address elsewhere).
    if (!email || claims?.email_verified !== true) {
      await recordAudit(deps.db, {
        requestId: c.get("requestId"),
        actor: "anonymous",
        action: "login.failed",
        address,
        outcome: "sso: no verified email",
      });
      return refuse(
        c,
        `${settings.label} did not give a verified email address, which Rounds needs to find your account.`,
      );
    }
    let user = await findUserByEmail(deps.db, email);
    if (!user && settings.autoCreateRole) {
      user = await createUser(deps.db, {
        email,
        name: typeof claims?.name === "string" ? claims.name.slice(0, 120) : null,
        role: settings.autoCreateRole,
        passwordHash: NO_PASSWORD,
      }) ?? await findUserByEmail(deps.db, email);
      if (user) {
        await recordAudit(deps.db, {
          requestId: c.get("requestId"),
          userId: user.id,
          actor: email,
          action: "user.create",
          objectType: "user",
          objectId: user.id,
          address,
          outcome: `${settings.autoCreateRole} (single sign-on)`,
        });
      }
    }
    if (!user || user.disabledAt) {
      await recordAudit(deps.db, {
        requestId: c.get("requestId"),
        userId: user?.id,
        actor: email,
        action: "login.failed",
        address,
        outcome: user ? "sso: disabled" : "sso: no account",
      });
      return refuse(
        c,
        user
          ? "This account is disabled. Ask an administrator."
          : `There is no Rounds account for ${email}. Ask an administrator to add you.`,
      );
    }
    await signIn(c, deps, user.id);
    await recordAudit(deps.db, {
      requestId: c.get("requestId"),
      userId: user.id,
      actor: user.email,
      action: "login.succeeded",
      address,
      outcome: "sso",
    });
    return c.redirect(flow.next, 303);
  });

  return app;
}
