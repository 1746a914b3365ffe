/**
 * Accounts on the web: sign-in, sign-out, first-run set-up, and the middleware that puts a signed-in user on
 * every other request, checks where state-changing requests come from, and closes a revoked user's streams.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import type { SecurityConfig } from "../config.ts";
import { recordAudit } from "../db/audit.ts";
import { type Db, loggableMessage } from "../db/client.ts";
import {
  createFirstAdmin,
  findUserByEmail,
  hasUsers,
  normaliseEmail,
  upgradePasswordHash,
} from "../db/users.ts";
import {
  createSignIn,
  findSignedIn,
  liveSignIns,
  revokeSignIn,
  type SignedIn,
  touchSignIn,
} from "../db/sign_ins.ts";
import { clearEvents, countEvent, peekEvents, uncountEvent } from "../db/limits.ts";
import { readAccountForm } from "../safety/account_form.ts";
import {
  DEFAULT_COST,
  hashPassword,
  isPasswordHash,
  type ScryptCost,
  verifyPasswordAtCost,
  weakerThan,
} from "../safety/passwords.ts";
import { loginPage, setupPage } from "../views/auth.tsx";
import { CSRF_FIELD } from "../views/csrf.tsx";
import type { PageContext } from "../views/page.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The signed-in user and session (set by requireSignIn). */
    auth: SignedIn;
    /** The sign-in form's anti-forgery token, before anyone is signed in. */
    loginCsrf: string;
    /** This request's id (app.ts): in its log line, its audit entries and its error page. */
    requestId: string;
  }
}

/** The cookie that carries the session token. */
export const SESSION_COOKIE = "rounds_session";
/** The cookie that pairs with the sign-in form's hidden token (double submit, before a session exists). */
const LOGIN_COOKIE = "rounds_login";
/** Header htmx requests carry the session's anti-forgery token in (static/app.js sets it). */
export const CSRF_HEADER = "x-csrf-token";

/**
 * Failed sign-ins an account may have per window at full speed; after them it is slowed, not locked: one attempt
 * a minute from each address (so failures from elsewhere cannot keep its owner out for long).
 */
export const LOGIN_FAILURES_PER_ACCOUNT = 5;
/** While an account is slowed, how often each address may try it. */
export const LOGIN_SLOW_MS = 60_000;
/**
 * Failed sign-ins one address may make per window (a clinic behind one NAT shares it). Past it, an address may
 * still sign in to an account it has not failed on in the window: a correct password is never stopped by
 * others' mistakes or by made-up e-mails.
 */
export const LOGIN_ATTEMPTS_PER_ADDRESS = 30;
/** The sign-in rate-limit window. */
export const LOGIN_WINDOW_MS = 15 * 60_000;
/** While an account is slowed, how often it may be tried from all addresses together. */
export const LOGIN_SLOW_ALL_MS = 10_000;
/** Past this many times its budget, an address may not try even accounts it has not failed on. */
export const LOGIN_ADDRESS_HARD_FACTOR = 10;

/**
 * The address sign-in limits count: an IPv4 address as it is, an IPv6 address by its /64 (one subscriber's
 * network, where every address is the attacker's to use).
 */
export function limitedAddress(address: string | null): string {
  if (!address) return "unknown";
  if (!address.includes(":")) return address;
  const [head, tail] = address.split("::");
  const groups = head ? head.split(":") : [];
  const rest = tail === undefined ? [] : tail ? tail.split(":") : [];
  const full = [...groups, ...Array(Math.max(0, 8 - groups.length - rest.length)).fill("0"), ...rest];
  return `${full.slice(0, 4).map((g) => (parseInt(g || "0", 16) || 0).toString(16)).join(":")}::/64`;
}

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** What the account routes and middleware need. */
export interface AuthDeps {
  db: Db;
  security: Readonly<SecurityConfig>;
  guard: StreamGuard;
  pageContext: (c: Context, path?: string) => PageContext;
  /** scrypt cost for new passwords (tests lower it). */
  passwordCost?: ScryptCost;
  /** The single sign-on provider's name, when one is configured (the sign-in page offers it). */
  ssoLabel?: string | null;
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The stored id of a session token: its SHA-256, so a database leak does not hand out live cookies. */
export async function signInIdOf(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The client's address: the connection's, or X-Forwarded-For's first hop behind a trusted proxy. */
export function clientAddress(c: Context, trustProxy: number): string | null {
  if (trustProxy > 0) {
    // Each proxy appends the address it saw; the client controls everything to the left of the entry our
    // outermost trusted proxy added, so that entry (counted from the right) is the one to believe.
    const hops = (c.req.header("x-forwarded-for") ?? "").split(",").map((h) => h.trim()).filter(Boolean);
    const seen = hops[Math.max(0, hops.length - trustProxy)];
    if (seen) return seen.slice(0, 100);
  }
  const env = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return env?.remoteAddr?.hostname ?? null;
}

/** True when the request came to localhost over plain HTTP, where a Secure cookie would not be sent back. */
/**
 * Plain HTTP from this machine, with no proxy in front: the one case where cookies go without `Secure` (a
 * laptop at http://localhost). A request a proxy forwarded is never that, whatever Host it carries: a proxy
 * that ends TLS and forwards to localhost with `X-Forwarded-Proto: https` must still get Secure cookies.
 */
export function isLocalHttp(c: Context, trustProxy: number): boolean {
  // Behind a trusted proxy, every request came through it (nginx's bare proxy_pass sends Host: localhost and
  // no X-Forwarded-* at all).
  if (trustProxy > 0) return false;
  const url = new URL(c.req.url);
  const forwarded = ["x-forwarded-proto", "x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip"]
    .some((name) => c.req.header(name) !== undefined);
  return !forwarded && url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}

function cookieOptions(c: Context, trustProxy: number, maxAgeSeconds?: number) {
  return {
    httpOnly: true,
    secure: !isLocalHttp(c, trustProxy),
    sameSite: "Lax" as const,
    path: "/",
    ...(maxAgeSeconds ? { maxAge: maxAgeSeconds } : {}),
  };
}

/** A path on this site to return to after signing in; "/" for anything else. */
export function safeNext(raw: string | undefined | null): string {
  const next = (raw ?? "").trim();
  return /^\/(?![\/\\])[^\s]*$/.test(next) && next.length <= 2000 ? next : "/";
}

/** Starts a session for a user: the cookie, and the row it points to. */
export async function signIn(
  c: Context,
  deps: Pick<AuthDeps, "db" | "security">,
  userId: string,
): Promise<void> {
  const token = randomToken();
  await createSignIn(deps.db, {
    id: await signInIdOf(token),
    userId,
    csrfToken: randomToken(),
    absoluteMs: deps.security.sessionAbsoluteMs,
    address: clientAddress(c, deps.security.trustProxy),
    userAgent: c.req.header("user-agent") ?? null,
  });
  setCookie(
    c,
    SESSION_COOKIE,
    token,
    cookieOptions(c, deps.security.trustProxy, Math.round(deps.security.sessionAbsoluteMs / 1000)),
  );
  deleteCookie(c, LOGIN_COOKIE, { path: "/", secure: !isLocalHttp(c, deps.security.trustProxy) });
}

function loginToken(c: Context, trustProxy: number): string {
  const existing = getCookie(c, LOGIN_COOKIE);
  const token = existing && /^[\w-]{20,64}$/.test(existing) ? existing : randomToken();
  if (token !== existing) setCookie(c, LOGIN_COOKIE, token, cookieOptions(c, trustProxy, 3600));
  c.set("loginCsrf", token);
  return token;
}

function checkLoginToken(c: Context, form: Record<string, unknown>): void {
  const cookie = getCookie(c, LOGIN_COOKIE);
  const sent = form[CSRF_FIELD];
  if (!cookie || typeof sent !== "string" || sent !== cookie) {
    throw new HTTPException(403, {
      message: "This form has expired or did not come from Rounds. Reload the page and try again.",
    });
  }
}

/** Sign-in, sign-out and first-run set-up. */
export function authRoutes(deps: AuthDeps): Hono {
  const app = new Hono();
  const { db, security } = deps;
  const cost = deps.passwordCost ?? DEFAULT_COST;
  // A hash to verify against when the account does not exist, so timing does not say which emails exist.
  let decoy: Promise<string> | null = null;
  let usersExist = false;
  const anyUsers = async () => usersExist ||= await hasUsers(db);

  app.get("/login", async (c) => {
    if (!(await anyUsers())) return c.redirect("/setup", 303);
    loginToken(c, security.trustProxy);
    const reason = c.req.query("reason");
    return c.html(loginPage(deps.pageContext(c), {
      email: "",
      sso: deps.ssoLabel,
      next: safeNext(c.req.query("next")),
      notice: reason === "expired"
        ? "Your session ended, so anything you had not sent yet was not sent. Sign in again: a question you " +
          "were typing is back in its box."
        : reason === "signed-out"
        ? "You are signed out."
        : undefined,
    }));
  });

  app.post("/login", async (c) => {
    const form = await c.req.parseBody();
    checkLoginToken(c, form);
    loginToken(c, security.trustProxy);
    const rawEmail = typeof form.email === "string" ? form.email : "";
    const password = typeof form.password === "string" ? form.password : "";
    const next = safeNext(typeof form.next === "string" ? form.next : "/");
    const email = normaliseEmail(rawEmail) ?? rawEmail.trim().toLowerCase().slice(0, 254);
    // What is not an e-mail address is never written down: it may be a password typed in the wrong field, and
    // the audit log keeps everything forever.
    const known = normaliseEmail(rawEmail);
    const actor = known ?? (rawEmail.trim() ? "(not an e-mail address)" : "anonymous");
    const address = clientAddress(c, security.trustProxy);
    const refuse = (status: 401 | 429, error: string) =>
      c.html(
        loginPage(deps.pageContext(c), { email: rawEmail.slice(0, 254), next, error, sso: deps.ssoLabel }),
        status,
      );

    // Counted before the password is checked, each in one statement: parallel attempts cannot all slip under
    // a limit while the first ones are still being checked. A success takes its count back.
    const network = limitedAddress(address);
    const addressKey = `login:address:${network}`;
    const accountKey = `login:account:${known ?? "(not an e-mail address)"}`;
    const pairKey = `login:pair:${known ?? "(not an e-mail address)"}|${network}`;
    const [byAddress, attempts, failedHere] = await Promise.all([
      countEvent(db, addressKey, LOGIN_WINDOW_MS),
      countEvent(db, accountKey, LOGIN_WINDOW_MS),
      peekEvents(db, pairKey, LOGIN_WINDOW_MS),
    ]);
    const limited = async (why: string, resetInSeconds: number) => {
      await recordAudit(db, {
        requestId: c.get("requestId"),
        actor,
        action: "login.limited",
        address,
        outcome: `429 ${why}`,
      });
      c.header("Retry-After", String(resetInSeconds));
      const wait = resetInSeconds < 90
        ? `${resetInSeconds} seconds`
        : `${Math.ceil(resetInSeconds / 60)} minutes`;
      return refuse(
        429,
        `Too many sign-in attempts. Wait ${wait} and try again, or ask your Rounds administrator to check ` +
          `the account.`,
      );
    };
    // An address over its budget keeps the accounts it has not failed on: their owners' correct passwords.
    // Far over it (trying password after password across accounts), it keeps none.
    if (
      (byAddress.count > LOGIN_ATTEMPTS_PER_ADDRESS && failedHere > 0) ||
      byAddress.count > LOGIN_ATTEMPTS_PER_ADDRESS * LOGIN_ADDRESS_HARD_FACTOR
    ) {
      return await limited("address", byAddress.resetInSeconds);
    }
    // An account past its failures is slowed: one attempt a minute from each address, and one every 10 s from
    // all addresses together (guesses from many addresses do not add up; its owner waits seconds, not minutes).
    if (attempts.count > LOGIN_FAILURES_PER_ACCOUNT) {
      // In this order: an address refused its minute does not use up the account's turn, and an attempt
      // refused the account's turn gets its minute back.
      const slowKey = `login:slow:${pairKey}`;
      const here = await countEvent(db, slowKey, LOGIN_SLOW_MS);
      if (here.count > 1) return await limited("account slowed", here.resetInSeconds);
      const anywhere = await countEvent(db, `login:slow-all:${accountKey}`, LOGIN_SLOW_ALL_MS);
      if (anywhere.count > 1) {
        await uncountEvent(db, slowKey, LOGIN_SLOW_MS);
        return await limited("account slowed", anywhere.resetInSeconds);
      }
    }
    const user = email ? await findUserByEmail(db, email) : null;
    // An unknown e-mail, or an account that signs in only through SSO (it has no hash), is checked against a
    // decoy hash at the same cost: how long the answer takes does not say which accounts exist (item 18).
    const hash = user && isPasswordHash(user.passwordHash)
      ? user.passwordHash
      : await (decoy ??= hashPassword(randomToken(), cost));
    const valid = password.length > 0 && password.length <= 1024 &&
      await verifyPasswordAtCost(password, hash, cost) &&
      hash === user?.passwordHash;
    if (!user || !valid || user.disabledAt) {
      await recordAudit(db, {
        requestId: c.get("requestId"),
        userId: user?.id,
        actor,
        action: "login.failed",
        address,
        outcome: user?.disabledAt && valid ? "disabled" : "wrong email or password",
      });
      await countEvent(db, pairKey, LOGIN_WINDOW_MS);
      return refuse(401, "That email and password do not match an active account.");
    }
    // Successes do not count: the account's failures are forgotten and the address gets its attempt back.
    await Promise.all([
      clearEvents(db, accountKey),
      clearEvents(db, pairKey),
      uncountEvent(db, addressKey, LOGIN_WINDOW_MS),
    ]);
    // A hash made at a lower cost than today's is made again, now that the password is at hand.
    if (weakerThan(user.passwordHash, cost)) {
      await upgradePasswordHash(db, user.id, user.passwordHash, await hashPassword(password, cost));
    }
    await signIn(c, deps, user.id);
    await recordAudit(db, {
      requestId: c.get("requestId"),
      userId: user.id,
      actor: user.email,
      action: "login.succeeded",
      address,
    });
    return c.redirect(next, 303);
  });

  app.post("/logout", async (c) => {
    const token = getCookie(c, SESSION_COOKIE);
    if (token) {
      const id = await signInIdOf(token);
      // Even an idle-expired session may sign out (and should be revoked at once).
      const signedIn = await findSignedIn(db, id, 365 * 86_400_000);
      if (signedIn) {
        const form = await c.req.parseBody();
        const sent = c.req.header(CSRF_HEADER) ??
          (typeof form[CSRF_FIELD] === "string" ? form[CSRF_FIELD] : "");
        if (sent !== signedIn.csrfToken) {
          throw new HTTPException(403, {
            message: "This sign-out did not come from a Rounds page. Try again.",
          });
        }
        await revokeSignIn(db, id);
        deps.guard.revoke([id]);
        await recordAudit(db, {
          requestId: c.get("requestId"),
          userId: signedIn.user.id,
          actor: signedIn.user.email,
          action: "logout",
          address: clientAddress(c, security.trustProxy),
        });
      }
    }
    deleteCookie(c, SESSION_COOKIE, { path: "/", secure: !isLocalHttp(c, deps.security.trustProxy) });
    if (c.req.header("hx-request")) {
      c.header("HX-Redirect", "/login?reason=signed-out");
      return c.body(null, 204);
    }
    return c.redirect("/login?reason=signed-out", 303);
  });

  app.get("/setup", async (c) => {
    if (await anyUsers()) return c.redirect("/login", 303);
    loginToken(c, security.trustProxy);
    return c.html(setupPage(deps.pageContext(c), { email: "", name: "", errors: [] }));
  });

  app.post("/setup", async (c) => {
    if (await anyUsers()) {
      throw new HTTPException(403, { message: "Rounds is already set up. Sign in instead." });
    }
    const form = await c.req.parseBody();
    checkLoginToken(c, form);
    loginToken(c, security.trustProxy);
    const { values, account, errors } = readAccountForm(form, { role: false, confirm: true });
    const view = { email: values.email, name: values.name, errors };
    if (!account) return c.html(setupPage(deps.pageContext(c), view), 422);
    const admin = await createFirstAdmin(db, {
      email: account.email,
      name: account.name,
      passwordHash: await hashPassword(account.password, cost),
    });
    if (!admin) throw new HTTPException(403, { message: "Rounds is already set up. Sign in instead." });
    usersExist = true;
    await recordAudit(db, {
      requestId: c.get("requestId"),
      userId: admin.id,
      actor: admin.email,
      action: "user.create",
      objectType: "user",
      objectId: admin.id,
      address: clientAddress(c, security.trustProxy),
      outcome: "first admin (set-up)",
    });
    await signIn(c, deps, admin.id);
    return c.redirect("/", 303);
  });

  return app;
}

/**
 * Refuses state-changing requests that a browser says came from another site (Sec-Fetch-Site, Origin). The
 * session token check below catches the rest; this one also covers the sign-in form.
 */
export function checkOrigin(trustProxy = 0): MiddlewareHandler {
  return async (c, next) => {
    if (UNSAFE_METHODS.has(c.req.method)) {
      const site = c.req.header("sec-fetch-site");
      const origin = c.req.header("origin");
      // Hosts, not origins: behind a proxy that ends TLS, the browser says https:// and this server sees http://.
      let originHost: string | null = null;
      try {
        originHost = origin === undefined ? null : new URL(origin).host;
      } catch { /* "null" or garbage: not this site */ }
      // X-Forwarded-Host only from a proxy Rounds was told to trust (TRUST_PROXY): anyone can send the header.
      const forwardedHost = trustProxy > 0
        ? c.req.header("x-forwarded-host")?.split(",").at(-1)?.trim()
        : undefined;
      const hosts = [new URL(c.req.url).host, forwardedHost];
      const allowed = origin === undefined || (originHost !== null && hosts.includes(originHost));
      if ((site !== undefined && site !== "same-origin" && site !== "none") || !allowed) {
        throw new HTTPException(403, {
          message: "This request came from another site, so Rounds refused it. Use Rounds' own pages.",
        });
      }
    }
    await next();
  };
}

/**
 * Puts the signed-in user on the request, or sends the browser to sign in. Also checks the anti-forgery
 * token on every state-changing request.
 */
export function requireSignIn(deps: AuthDeps): MiddlewareHandler {
  const { db, security } = deps;
  let usersExist = false;
  return async (c, next) => {
    const token = getCookie(c, SESSION_COOKIE);
    const signedIn = token && token.length <= 100
      ? await findSignedIn(db, await signInIdOf(token), security.sessionIdleMs)
      : null;
    if (!signedIn) {
      if (token) {
        deleteCookie(c, SESSION_COOKIE, { path: "/", secure: !isLocalHttp(c, deps.security.trustProxy) });
      }
      if (!usersExist && !(usersExist = await hasUsers(db))) {
        if (c.req.method === "GET" && !c.req.header("hx-request")) return c.redirect("/setup", 303);
        throw new HTTPException(401, {
          message: "Rounds is not set up yet: open /setup to create an administrator.",
        });
      }
      const here = c.req.header("hx-current-url");
      const back = c.req.method === "GET" && !c.req.header("hx-request")
        ? c.req.path + (new URL(c.req.url).search)
        : here
        ? new URL(here, c.req.url).pathname
        : "/";
      const login = `/login?${token ? "reason=expired&" : ""}next=${encodeURIComponent(safeNext(back))}`;
      if (c.req.header("hx-request")) {
        c.header("HX-Redirect", login);
        throw new HTTPException(401, {
          message: "Your session has ended. Sign in again; your text is kept.",
        });
      }
      if (c.req.method === "GET") return c.redirect(login, 303);
      throw new HTTPException(401, { message: "Your session has ended. Sign in again and resend." });
    }
    if (UNSAFE_METHODS.has(c.req.method)) {
      let sent = c.req.header(CSRF_HEADER);
      if (
        sent === undefined && /^(multipart\/form-data|application\/x-www-form-urlencoded)/i.test(
          c.req.header("content-type") ?? "",
        )
      ) {
        const value = (await c.req.parseBody())[CSRF_FIELD];
        sent = typeof value === "string" ? value : undefined;
      }
      if (sent !== signedIn.csrfToken) {
        throw new HTTPException(403, {
          message:
            "This request did not carry the page's security token (it may be from an old tab, or from " +
            "another site). Reload the page and try again.",
        });
      }
    }
    // Idle expiry counts from the last request; writing it at most once a minute keeps reads cheap.
    if (Date.now() - signedIn.lastSeenAt.getTime() > 60_000) await touchSignIn(db, signedIn.signInId);
    c.set("auth", signedIn);
    await next();
    // What a signed-in user sees is theirs: no cache keeps it, and Back after signing out does not show it.
    if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
  };
}

/** The signed-in user of a request that passed requireSignIn. */
export function signedInUser(c: Context): SignedIn["user"] {
  const auth = c.get("auth");
  if (!auth) throw new HTTPException(401, { message: "Sign in first." });
  return auth.user;
}

/** Ends the open streams of revoked sessions: at once on this instance, within `pollMs` on any other. */
export interface StreamGuard {
  /** Watches one stream of a session; `signal` aborts when the session is revoked. Call release when done. */
  open(signInId: string): { signal: AbortSignal; release(): void };
  /** Revokes sessions known to be gone (logout, disable on this instance). */
  revoke(signInIds: string[]): void;
  /** Streams being watched now. */
  readonly watching: number;
}

/** A stream guard that polls the database while any stream is open (and not otherwise: no idle timers). */
export function createStreamGuard(db: Db, options: { pollMs?: number } = {}): StreamGuard {
  const pollMs = options.pollMs ?? 2000;
  const open = new Map<string, Set<AbortController>>();
  let timer: ReturnType<typeof setInterval> | null = null;
  let watching = 0;

  const revoke = (ids: string[]) => {
    for (const id of ids) {
      for (const controller of open.get(id) ?? []) controller.abort(new Error("session revoked"));
      open.delete(id);
    }
  };
  const poll = async () => {
    const ids = [...open.keys()];
    if (ids.length === 0) return;
    try {
      const live = await liveSignIns(db, ids);
      revoke(ids.filter((id) => !live.has(id)));
    } catch (error) {
      console.error("checking open streams' sessions failed:", loggableMessage(error));
    }
  };
  const stopTimerIfIdle = () => {
    if (watching === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };

  return {
    get watching() {
      return watching;
    },
    open(signInId) {
      const controller = new AbortController();
      let set = open.get(signInId);
      if (!set) open.set(signInId, set = new Set());
      set.add(controller);
      watching++;
      timer ??= setInterval(poll, pollMs);
      let released = false;
      return {
        signal: controller.signal,
        release() {
          if (released) return;
          released = true;
          watching--;
          const current = open.get(signInId);
          current?.delete(controller);
          if (current?.size === 0) open.delete(signInId);
          stopTimerIfIdle();
        },
      };
    },
    revoke,
  };
}

/** Options for sseResponse that end the stream when the request's session is revoked. */
export function revocableStream(
  c: Context,
  guard: StreamGuard,
): { signal?: AbortSignal; onClose?: () => void } {
  const auth = c.get("auth");
  if (!auth) return {};
  const watch = guard.open(auth.signInId);
  return { signal: watch.signal, onClose: watch.release };
}
