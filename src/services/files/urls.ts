import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a download URL grants: one variant of one attachment, to one user of one organization, until `expires` (Unix seconds). */
export interface FileGrant {
  attachmentId: string;
  organizationId: string;
  userId: string;
  variant: string;
  expires: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VARIANT = /^(original|[1-9][0-9]{1,4})$/;

/**
 * Short-lived download URLs: `/files/<attachmentId>/<variant>?o=<org>&u=<user>&e=<expires>&s=<hmac>`.
 * The signature binds every part, so a URL opens one file for one user for
 * minutes, and works where no Authorization header can be sent (`<img src>`).
 * Expiry is rounded up to a whole window, so the URLs a client gets within a
 * window are the same and its cache keeps working; a URL lives between `ttl`
 * and `ttl + window` seconds. The download handler still checks the user may
 * read the file, on every request.
 */
export class FileUrls {
  private readonly key: Buffer;
  private readonly window: number;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
    private readonly base: string,
    /** Milliseconds since the epoch: the services' Clock, which tests move forward. */
    private readonly now: () => number = Date.now,
  ) {
    // A key of its own, derived from the token secret: a file signature is never a valid token MAC, nor the reverse.
    this.key = createHmac('sha256', secret).update('parley file urls v1').digest();
    this.window = Math.max(1, Math.min(60, Math.floor(ttlSeconds / 5)));
  }

  /** When the URLs handed out now stop working (Unix seconds): a whole window past the TTL. */
  expiresAt(now = this.now()): number {
    return Math.ceil((Math.floor(now / 1000) + this.ttlSeconds) / this.window) * this.window;
  }

  url(grant: Omit<FileGrant, 'expires'>, now = this.now()): { url: string; expires: Date } {
    const expires = this.expiresAt(now);
    const full: FileGrant = { ...grant, expires };
    const query = new URLSearchParams({ o: grant.organizationId, u: grant.userId, e: String(expires), s: this.sign(full) });
    return { url: `${this.base}/files/${grant.attachmentId}/${grant.variant}?${query.toString()}`, expires: new Date(expires * 1000) };
  }

  /** The grant a request URL carries, or why it carries none ('expired' is told apart for the client's sake). */
  verify(pathAndQuery: string, now = this.now()): FileGrant | 'invalid' | 'expired' {
    const url = new URL(pathAndQuery, 'http://localhost');
    const [, files, attachmentId, variant, ...rest] = url.pathname.split('/');
    if (files !== 'files' || rest.length || !attachmentId || !variant || !UUID.test(attachmentId) || !VARIANT.test(variant)) {
      return 'invalid';
    }
    const organizationId = url.searchParams.get('o') ?? '';
    const userId = url.searchParams.get('u') ?? '';
    const expires = Number(url.searchParams.get('e'));
    const signature = url.searchParams.get('s') ?? '';
    if (!UUID.test(organizationId) || !UUID.test(userId) || !Number.isSafeInteger(expires)) return 'invalid';
    const grant: FileGrant = { attachmentId, organizationId, userId, variant, expires };
    const expected = Buffer.from(this.sign(grant));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return expires * 1000 <= now ? 'expired' : grant;
  }

  private sign(g: FileGrant): string {
    return createHmac('sha256', this.key)
      .update(`${g.attachmentId}\n${g.variant}\n${g.organizationId}\n${g.userId}\n${g.expires}`)
      .digest('base64url');
  }
}
