import { CloseCode } from 'graphql-ws';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Viewer } from '../services/viewer.ts';
import type { SessionEndReason } from '../generated/prisma/client.ts';
import { outageReason } from './errors.ts';
import type { ParleyPubSub } from '../bus/pubsub.ts';
import type { TokenClaims } from '../auth/tokens.ts';

/**
 * Close codes Parley sends, besides graphql-ws' own protocol ones (4400 bad
 * message, 4408 no `connection_init` in time, 4500 internal error).
 * https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
 */
export const SocketClose = {
  /**
   * No valid credentials: no token at all, one that has expired (at connect;
   * an open socket outlives its token), or the socket's session ended (logout,
   * revokeSession, logoutEverywhere, a password change, refresh token reuse)
   * or expired. The remedy is new credentials: refreshSession after a token
   * expired, signing in again after the session ended (refreshing fails too). graphql-ws clients treat
   * 4401 as fatal, so they do not retry in a loop with a token that can never
   * work again; 4403, which they retry, would do exactly that.
   */
  Unauthorized: CloseCode.Unauthorized,
  /**
   * A token we recognise as one and refuse: malformed or forged, its user
   * deactivated or gone, or, for an open socket, the user's role changed (what
   * its subscriptions were allowed to see was decided under the old role).
   * This is also graphql-ws' own code for a refused `connection_init`; its
   * clients retry it, which picks up a changed role at once.
   */
  Forbidden: CloseCode.Forbidden,
  /**
   * The user already has the maximum number of sockets on this process. The
   * number echoes HTTP 429 (graphql-ws uses it for a repeated
   * `connection_init`, which it closes the same way): clients treat it as fatal
   * instead of hammering a full slot table with reconnects.
   */
  TooManySockets: CloseCode.TooManyInitialisationRequests,
  /** The process is shutting down; reconnect (to another process). */
  GoingAway: 1001,
  /**
   * The client reads more slowly than its subscriptions produce and its unsent
   * data passed WS_MAX_BUFFERED_BYTES, or the socket could not be admitted
   * because the database or Redis was unreachable. Clients retry it;
   * channelEvents resumed with the last seq received loses nothing.
   */
  TryAgainLater: 1013,
} as const;

/** Told when a user's sockets open and close on this process (presence). */
export interface SocketPresence {
  connected(userId: string): Promise<void>;
  disconnected(userId: string): Promise<void>;
}

/** What the registry needs from AuthService. */
export interface SocketAuth {
  authenticate(token: string): Promise<{ viewer: Viewer; sessionId: string } | null>;
  /** The same, for a session authenticated before (its token may have expired since). */
  authenticateSession(claims: TokenClaims): Promise<{ viewer: Viewer; sessionId: string } | null>;
  /** Why the session no longer stands, when the process knows (no query); else null. */
  sessionEnded(sessionId: string): SessionEndReason | 'EXPIRED' | null;
}

interface Entry {
  socket: WebSocket;
  claims: TokenClaims;
  userId: string;
  sessionId: string;
  role: Viewer['role'];
  /** How often the session is checked again (the lifetime of the token the socket came with). */
  periodMs: number;
  check: NodeJS.Timeout | null;
}

// setTimeout fires at once for delays above 2^31 - 1 ms (about 24.8 days), so
// longer waits are taken in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When the token stops verifying (jose rejects it from `exp` on), or null when it is not a JWT with `exp`. */
function expiresAt(token: string): number | null {
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * How a socket whose session ended closes: 4401, the client needs new
 * credentials (see SocketClose.Unauthorized), except after a deactivation,
 * which closes with 4403 as it always has.
 */
function closeForEnd(end: SessionEndReason | 'EXPIRED'): [number, string] {
  return end === 'USER_DEACTIVATED'
    ? [SocketClose.Forbidden, 'User deactivated']
    : [SocketClose.Unauthorized, 'Session ended; sign in again'];
}

/**
 * The session a token names, read without verifying it: only to choose the
 * close code of a token already refused (a forger gains nothing by naming an
 * ended session), or null when it names none.
 */
function sessionOf(token: string): string | null {
  try {
    const { sid } = decodeJwt(token);
    return typeof sid === 'string' ? sid : null;
  } catch {
    return null;
  }
}

/**
 * The authenticated graphql-ws sockets of this process, by user. It admits a
 * socket on `connection_init` (token check, per-user cap) and closes it when
 * its session ends (`sessions:ended`) or expires, or its user is
 * deactivated or changes role (`users:changed`), whichever process made that
 * change.
 */
export class SocketRegistry {
  private readonly byUser = new Map<string, Set<Entry>>();
  private readonly refusals = new WeakMap<WebSocket, number>();
  private readonly changes: AsyncIterableIterator<{ userId: string }>;
  private readonly ends: AsyncIterableIterator<{ userId: string; sessionIds: string[]; reason: SessionEndReason }>;
  private closed = false;

  constructor(
    private readonly auth: SocketAuth,
    pubsub: ParleyPubSub,
    private readonly maxSocketsPerUser: number,
    private readonly log: Logger,
    private readonly presence?: SocketPresence,
  ) {
    this.changes = pubsub.subscribe('users:changed');
    this.followChanges().catch((error: unknown) =>
      log.error({ err: error }, 'stopped following user changes; sockets learn of them at their next session check'),
    );
    this.ends = pubsub.subscribe('sessions:ended');
    this.followEnds().catch((error: unknown) =>
      log.error({ err: error }, 'stopped following ended sessions; sockets learn of them at their next session check'),
    );
  }

  /**
   * Checks a new socket's `connectionParams.authToken` and binds the socket to
   * its user. Returns the token for the socket's operations, or null once the
   * socket has been closed with the code that tells the client what to do.
   *
   * Sockets without a token are refused: everything live (subscriptions,
   * typing, presence) needs a viewer, signing in works over HTTP, and the
   * per-user cap can only bound sockets that have a user.
   */
  async admit(socket: WebSocket, authToken: unknown): Promise<TokenClaims | null> {
    if (authToken === undefined || authToken === null || authToken === '') {
      return this.refuse(socket, SocketClose.Unauthorized, 'Missing connectionParams.authToken');
    }
    if (typeof authToken !== 'string') return this.refuse(socket, SocketClose.Forbidden, 'Invalid token');
    let signedIn: { viewer: Viewer; sessionId: string } | null;
    try {
      signedIn = await this.auth.authenticate(authToken);
    } catch (error) {
      const reason = outageReason(error, this.log);
      if (reason === null) throw error;
      // graphql-ws would close with 4500, which its clients never retry.
      return this.refuse(socket, SocketClose.TryAgainLater, reason);
    }
    if (!signedIn) {
      const expiry = expiresAt(authToken);
      if (expiry !== null && expiry <= Date.now()) return this.refuse(socket, SocketClose.Unauthorized, 'Token expired');
      const session = sessionOf(authToken);
      const end = session === null ? null : this.auth.sessionEnded(session);
      if (end !== null && end !== 'USER_DEACTIVATED') return this.refuse(socket, SocketClose.Unauthorized, 'Session ended; sign in again');
      return this.refuse(socket, SocketClose.Forbidden, 'Invalid token or inactive user');
    }
    const { viewer, sessionId } = signedIn;
    if (this.closed) return this.refuse(socket, SocketClose.GoingAway, 'Server shutting down');
    // The client may have left while the token was checked: its 'close' has
    // fired already, so registering it now would leak the entry.
    if (socket.readyState !== socket.OPEN) return null;
    const entries = this.byUser.get(viewer.id) ?? new Set<Entry>();
    if (entries.size >= this.maxSocketsPerUser) {
      return this.refuse(socket, SocketClose.TooManySockets, `At most ${this.maxSocketsPerUser} sockets per user`);
    }
    // The session may have ended while the token was checked: its signal came
    // before there was an entry to close. From here on the entry is there.
    const end = this.auth.sessionEnded(sessionId);
    if (end !== null) return this.refuse(socket, ...closeForEnd(end));
    const claims: TokenClaims = { userId: viewer.id, organizationId: viewer.organizationId, sessionId };
    // A verified token always carries `exp` (TokenService requires it).
    const tokenExpiry = expiresAt(authToken) ?? Date.now();
    const periodMs = Math.max(tokenExpiry - Date.now(), 1000);
    const entry: Entry = { socket, claims, userId: viewer.id, sessionId, role: viewer.role, periodMs, check: null };
    entries.add(entry);
    this.byUser.set(viewer.id, entries);
    socket.once('close', () => this.remove(entry));
    this.presence?.connected(viewer.id).catch((error: unknown) => this.log.warn({ err: error }, 'presence update failed'));
    this.checkAt(entry, tokenExpiry);
    return claims;
  }

  /** Stops following user changes and clears every expiry timer; sockets are closed by the server. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of [...this.byUser.values()].flatMap((entries) => [...entries])) this.remove(entry);
    await Promise.all([this.changes.return?.(), this.ends.return?.()]);
  }

  /** Whether `admit` refused this socket for its credentials (missing, bad or expired token): what the init-failure limit counts. */
  refusedForCredentials(socket: WebSocket): boolean {
    const code = this.refusals.get(socket);
    return code === SocketClose.Unauthorized || code === SocketClose.Forbidden;
  }

  private refuse(socket: WebSocket, code: number, reason: string): null {
    this.refusals.set(socket, code);
    socket.close(code, reason);
    return null;
  }

  /**
   * Checks the socket's session again at `at`, then every period: a socket
   * outlives the access token it came with (clients refresh tokens over
   * HTTP, and a socket need not reconnect for that), but not its session.
   * An ended session closes it at once through `sessions:ended`; this catches
   * a session that expired, or a signal lost while Redis was away.
   */
  private checkAt(entry: Entry, at: number): void {
    const delay = Math.max(0, Math.min(at - Date.now(), MAX_TIMER_MS));
    entry.check = setTimeout(() => {
      entry.check = null;
      // Timers may fire a millisecond before the wall clock says so.
      if (Date.now() < at) this.checkAt(entry, at);
      else void this.revalidate(entry);
    }, delay);
  }

  private async revalidate(entry: Entry): Promise<void> {
    try {
      const signedIn = await this.auth.authenticateSession(entry.claims);
      if (!this.byUser.get(entry.userId)?.has(entry)) return;
      if (!signedIn) return this.kick(entry, ...closeForEnd(this.auth.sessionEnded(entry.sessionId) ?? 'EXPIRED'));
      if (signedIn.viewer.role !== entry.role) return this.kick(entry, SocketClose.Forbidden, 'Role changed; reconnect');
    } catch (error) {
      // The database is away: every operation checks the session too; try again next period.
      this.log.warn({ err: error, userId: entry.userId }, 'could not re-check a socket’s session');
    }
    if (this.byUser.get(entry.userId)?.has(entry)) this.checkAt(entry, Date.now() + entry.periodMs);
  }

  private kick(entry: Entry, code: number, reason: string): void {
    this.remove(entry);
    entry.socket.close(code, reason);
  }

  private remove(entry: Entry): void {
    if (entry.check) clearTimeout(entry.check);
    entry.check = null;
    const entries = this.byUser.get(entry.userId);
    if (!entries?.delete(entry)) return;
    if (entries.size === 0) this.byUser.delete(entry.userId);
    this.presence?.disconnected(entry.userId).catch((error: unknown) => this.log.warn({ err: error }, 'presence update failed'));
  }

  private async followChanges(): Promise<void> {
    for await (const { userId } of this.changes) {
      if (!this.byUser.has(userId)) continue;
      // AuthService drops its cached viewer in its own listener to this same
      // message, which the pub/sub engine calls in the same dispatch; its
      // eviction runs in a microtask, so look the user up after those.
      setImmediate(() => void this.recheck(userId));
    }
  }

  /**
   * Closes the sockets of sessions that ended, in this process or another
   * (`closeForEnd`). A deactivation's own `users:changed` would close them a
   * moment later through `recheck`, with the same code.
   */
  private async followEnds(): Promise<void> {
    for await (const { userId, sessionIds, reason } of this.ends) {
      const ended = new Set(sessionIds);
      for (const entry of [...(this.byUser.get(userId) ?? [])]) {
        if (ended.has(entry.sessionId)) this.kick(entry, ...closeForEnd(reason));
      }
    }
  }

  /** Closes the user's sockets whose session no longer yields a viewer, or yields one with another role. */
  private async recheck(userId: string): Promise<void> {
    for (const entry of [...(this.byUser.get(userId) ?? [])]) {
      try {
        const viewer = (await this.auth.authenticateSession(entry.claims))?.viewer;
        if (!viewer) this.kick(entry, SocketClose.Forbidden, 'User deactivated');
        else if (viewer.role !== entry.role) this.kick(entry, SocketClose.Forbidden, 'Role changed; reconnect');
      } catch (error) {
        // Every new operation on the socket checks the token again, and the
        // viewer cache's TTL bounds how long a stale answer can last.
        this.log.warn({ err: error, userId }, 'could not re-check a socket after a user change');
      }
    }
  }
}
