/**
 * Password hashing with scrypt (memory-hard, from node:crypto): `scrypt$N$r$p$salt$hash`, base64 parts.
 * The parameters travel with each hash, so raising the cost later leaves old hashes verifiable.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** Cost parameters: N = 2^15, r = 8 needs 32 MiB and about 0.1 s per hash on a 2-core machine. */
export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

/** The production cost (OWASP's scrypt minimum is N = 2^17 with r = 8 at p = 1, or 2^15 with more rounds). */
export const DEFAULT_COST: ScryptCost = { N: 2 ** 15, r: 8, p: 1 };

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

/** Why a new password is not acceptable, or null when it is. */
export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) {
    return `A password needs at least ${MIN_PASSWORD_LENGTH} characters (a few words make a good one)`;
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    return `A password may be at most ${MAX_PASSWORD_LENGTH} characters`;
  }
  return null;
}
