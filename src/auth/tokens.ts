import { SignJWT, jwtVerify, errors } from 'jose';
import { LRUCache } from 'lru-cache';

export interface TokenClaims {
  userId: string;
  organizationId: string;
}

const ALG = 'HS256';
const ISSUER = 'parley';

/** Issues and verifies HS256 access tokens bound to one user and organization. */
export class TokenService {
  private readonly key: Uint8Array;
  // A token that verified once stays valid until it expires, so its claims are
  // kept until then: every request carries one, and WebCrypto HMAC costs more
  // CPU than the rest of a simple request's auth. Forged or expired tokens are
  // never cached.
  private readonly verified = new LRUCache<string, TokenClaims>({ max: 10_000, ttlAutopurge: false });

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(claims: TokenClaims): Promise<string> {
    return new SignJWT({ org: claims.organizationId })
      .setProtectedHeader({ alg: ALG })
      .setSubject(claims.userId)
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  /** Returns the claims, or null for a malformed, forged or expired token. */
  async verify(token: string): Promise<TokenClaims | null> {
    const cached = this.verified.get(token);
    if (cached) return cached;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: [ALG], issuer: ISSUER });
      if (typeof payload.sub !== 'string' || typeof payload.org !== 'string' || typeof payload.exp !== 'number') return null;
      const claims = { userId: payload.sub, organizationId: payload.org };
      this.verified.set(token, claims, { ttl: payload.exp * 1000 - Date.now() });
      return claims;
    } catch (error) {
      if (error instanceof errors.JOSEError) return null;
      throw error;
    }
  }
}
