import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));

// The parameters are stored in the hash so the cost can be raised later
// without invalidating existing passwords. r=8, p=1 as OWASP recommends.
const KEYLEN = 32;
const maxmem = 256 * 1024 * 1024;

/**
 * Hashes a password as `scrypt$N$r$p$salt$key` (base64url parts). `log2N` 17 is
 * OWASP's minimum (about half a second here); tests lower it through config.
 */
export async function hashPassword(password: string, log2N = 17): Promise<string> {
  const params = { N: 2 ** log2N, r: 8, p: 1 };
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEYLEN, { ...params, maxmem });
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Constant-time check of a password against a stored hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem,
  });
  return timingSafeEqual(actual, expected);
}
