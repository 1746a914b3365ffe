/**
 * Password hashing with scrypt (memory-hard, from node:crypto): `scrypt$N$r$p$salt$hash`, base64 parts.
 * The parameters travel with each hash, so raising the cost later leaves old hashes verifiable.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** Cost parameters: N = 2^15, r = 8 needs 32 MiB per hash, whatever p; p multiplies the time. */
export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

/**
 * The production cost: OWASP's scrypt minimum is N = 2^17, r = 8, p = 1 (128 MiB a hash), or one of its
 * equivalents; this is the equivalent N = 2^15, r = 8, p = 3, which keeps each sign-in to 32 MiB (a burst of
 * sign-ins cannot take the server's memory) for the same work.
 */
export const DEFAULT_COST: ScryptCost = { N: 2 ** 15, r: 8, p: 3 };

/** True when a stored hash was made with less work than `cost` (it is rehashed at the next sign-in). */
export function weakerThan(stored: string, cost: ScryptCost = DEFAULT_COST): boolean {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  return N * r * p < cost.N * cost.r * cost.p;
}

/** True when a stored value is a password hash at all (an account that signs in only through SSO has none). */
export function isPasswordHash(stored: string): boolean {
  return stored.startsWith("scrypt$") && stored.split("$").length === 6;
}

/** Shortest and longest password accepted. */
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;

const KEY_LENGTH = 32;

function derive(password: string, salt: Uint8Array, cost: ScryptCost): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize("NFKC"),
      salt,
      KEY_LENGTH,
      { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r + 1024 * 1024 },
      (error, key) => error ? reject(error) : resolve(new Uint8Array(key)),
    );
  });
}

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function unb64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

/** Hashes a password with a fresh salt. */
export async function hashPassword(password: string, cost: ScryptCost = DEFAULT_COST): Promise<string> {
  const salt = new Uint8Array(randomBytes(16));
  const key = await derive(password, salt, cost);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${b64(salt)}$${b64(key)}`;
}

/** True when the password matches the hash; false for a wrong password or an unreadable hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (![N, r, p].every(Number.isSafeInteger) || N > 2 ** 20 || r > 32 || p > 16) return false;
  let salt: Uint8Array, expected: Uint8Array;
  try {
    salt = unb64(parts[4]);
    expected = unb64(parts[5]);
  } catch {
    return false;
  }
  const key = await derive(password, salt, { N, r, p });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * Passwords that are common or predictable, as their letters alone ("Password123!" is "password"): checked
 * against every new password with digits and symbols taken away and look-alike digits read as letters.
 */
const COMMON = new Set(
  ("password passw0rd passwd qwerty qwertyuiop asdfgh asdfghjkl zxcvbn zxcvbnm letmein welcome iloveyou admin " +
    "administrator root login monkey dragon football baseball soccer hockey master shadow sunshine princess " +
    "superman batman trustno michael jennifer charlie freedom whatever starwars computer internet secret " +
    "changeme default guest hello hellothere abc abcdef abcdefgh abcdefghijkl test tester testing user " +
    "rounds roundsadmin clinic clinician doctor nurse hospital medicine medical health healthcare patient " +
    "summer winter spring autumn january february march april may june july august september october " +
    "november december monday tuesday wednesday thursday friday saturday sunday").split(" "),
);

/** Characters in a row on a keyboard or in the alphabet, each way: a password made of them is a walk. */
const RUNS = [
  "abcdefghijklmnopqrstuvwxyzabc",
  "qwertyuiopasdfghjklzxcvbnm",
  "012345678901234567890",
  "1qaz2wsx3edc4rfv5tgb",
];

function isRun(text: string): boolean {
  if (text.length < 4) return false;
  for (const run of RUNS) {
    const reversed = [...run].reverse().join("");
    if (run.includes(text) || reversed.includes(text)) return true;
  }
  return false;
}

/**
 * Verifies a password, then does the work that hashing at `cost` would take beyond the stored hash's own: an
 * account whose hash predates a cost rise answers as slowly as a current one and as an unknown e-mail (whose
 * decoy is at `cost`), so timing does not tell which accounts exist.
 */
export async function verifyPasswordAtCost(
  password: string,
  stored: string,
  cost: ScryptCost,
): Promise<boolean> {
  const valid = await verifyPassword(password, stored);
  const parts = stored.split("$");
  if (parts.length === 6 && parts[0] === "scrypt" && weakerThan(stored, cost)) {
    const [N, r, p] = parts.slice(1, 4).map(Number);
    const pad = N === cost.N && r === cost.r ? { ...cost, p: Math.max(1, cost.p - p) } : cost;
    await derive(password, new Uint8Array(16), pad);
  }
  return valid;
}

/** Why a new password is not acceptable, or null when it is. `about` holds the account's e-mail and name. */
export function passwordProblem(
  password: string,
  about: { email?: string | null; name?: string | null } = {},
): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) {
    return `A password needs at least ${MIN_PASSWORD_LENGTH} characters (a few words make a good one)`;
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    return `A password may be at most ${MAX_PASSWORD_LENGTH} characters`;
  }
  const lower = password.normalize("NFKC").toLowerCase();
  if (new Set(lower).size <= 3) {
    return "A password needs more than a few different characters: try a few unrelated words";
  }
  // Its letters alone ("Password1234!" is "password"), and with look-alike digits read as letters ("passw0rd").
  const plain = lower.replace(/[^\p{L}]/gu, "");
  const LOOK_ALIKES: Record<string, string> = {
    "0": "o",
    "1": "l",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "@": "a",
    "$": "s",
  };
  const leet = lower.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, "").replace(/[013457@$]/g, (c) => LOOK_ALIKES[c])
    .replace(/[^\p{L}]/gu, "");
  const common = (letters: string) => {
    const repeated = /^(.+?)\1+$/.exec(letters)?.[1] ?? letters;
    const trimmed = letters.replace(/^(?:my|the|i)/, "");
    return COMMON.has(letters) || COMMON.has(repeated) || COMMON.has(trimmed) || isRun(letters);
  };
  if (common(plain) || common(leet) || isRun(lower.replace(/[^\p{L}\p{N}]/gu, ""))) {
    return "That password is one of the first that attackers try. Choose another: a few unrelated words work well";
  }
  const own = [
    ...(about.email ? [about.email.toLowerCase(), about.email.toLowerCase().split("@")[0]] : []),
    ...(about.name ? about.name.toLowerCase().split(/\s+/) : []),
  ].filter((part) => part.length >= 4);
  // What is left once the e-mail and name are taken out: too little, and the password is made of them.
  let rest = lower;
  for (const part of own.sort((a, b) => b.length - a.length)) rest = rest.replaceAll(part, "");
  if (rest !== lower && rest.replace(/[^\p{L}\p{N}]/gu, "").length < 6) {
    return "A password should not be made of your e-mail address or name. Choose another";
  }
  return null;
}
