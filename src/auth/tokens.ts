import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors } from 'jose';
import { LRUCache } from 'lru-cache';

export interface TokenClaims {
  userId: string;
  organizationId: string;
  /** The session the token was issued for (`sid`): revoking it refuses the token. */
  sessionId: string;
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

const ALG = 'HS256';
const ISSUER = 'parley';

/**
 * Issues and verifies HS256 access tokens bound to one user, organization and
 * session. They are short-lived (ACCESS_TOKEN_TTL_SECONDS): a client renews
 * them with its refresh token, and whether the session still stands is
 * checked apart from the signature (AuthService), so revocation is immediate.
 */
export class TokenService {
  private readonly key: Uint8Array;
  // A token that verified once keeps verifying until it expires, so its claims
  // are kept until then: every request carries one, and WebCrypto HMAC costs
  // more CPU than the rest of a simple request's auth. Forged or expired tokens
  // are never cached. Revocation is the session's business, not the signature's.
  private readonly verified = new LRUCache<string, TokenClaims>({ max: 10_000, ttlAutopurge: false });

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(claims: TokenClaims): Promise<IssuedToken> {
    const issuedAt = Math.floor(Date.now() / 1000);
    const expiresAt = issuedAt + this.ttlSeconds;
    const token = await new SignJWT({ org: claims.organizationId, sid: claims.sessionId })
      .setProtectedHeader({ alg: ALG })
      .setSubject(claims.userId)
      .setIssuer(ISSUER)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(this.key);
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }

  /**
   * Returns the claims, or null for a malformed, forged or expired token, and
   * for one without a session (issued before sessions existed).
   */
  async verify(token: string): Promise<TokenClaims | null> {
    const cached = this.verified.get(token);
    if (cached) return cached;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: [ALG], issuer: ISSUER });
      if (typeof payload.sub !== 'string' || typeof payload.org !== 'string' || typeof payload.exp !== 'number') return null;
      if (typeof payload.sid !== 'string') return null;
      const claims = { userId: payload.sub, organizationId: payload.org, sessionId: payload.sid };
      this.verified.set(token, claims, { ttl: payload.exp * 1000 - Date.now() });
      return claims;
    } catch (error) {
      if (error instanceof errors.JOSEError) return null;
      throw error;
    }
  }
}

/** How every refresh token begins: tells it apart from access tokens and API keys at a glance. */
export const REFRESH_TOKEN_PREFIX = 'prt_';

/**
 * A new refresh token: opaque, 32 random bytes. Only its hash is stored
 * (`refreshTokenHash`); the token is random, so a slow hash would add nothing.
 */
export function newRefreshToken(): string {
  return REFRESH_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function refreshTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
