import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Prisma, PrismaClient, Session, SessionEndReason, User } from '../generated/prisma/client.ts';
import type { ParleyPubSub } from '../bus/pubsub.ts';
import type { Tx } from '../db/tx.ts';
import { newRefreshToken, refreshTokenHash, type TokenService } from '../auth/tokens.ts';
import { assertId } from './access.ts';
import { audit } from './audit.ts';
import { DomainError, notFound } from './errors.ts';
import type { Viewer } from './viewer.ts';

/** Who signed in: the client's address and user agent, as the transport saw them (null for the seed script). */
export interface SessionClient {
  ip: string | null;
  userAgent: string | null;
}

/** What a sign-in or a refresh hands the client. */
export interface SessionTokens {
  /** The access token (`Authorization: Bearer`). */
  token: string;
  accessTokenExpiresAt: Date;
  /** The refresh token: works once, for `refreshSession`. */
  refreshToken: string;
  session: Session;
}

/** A standing session as the hot path needs it. */
interface SessionState {
  userId: string;
  expiresAt: number;
  /** lastSeenAt as this process last wrote or read it. */
  seenAt: number;
}

/** A session that ended, and why (null: no such session). */
interface EndedSession {
  endedBy: SessionEndReason | null;
}

/** Why a session does not stand, as far as this process knows: ended for a reason, or expired. */
export type SessionEnd = SessionEndReason | 'EXPIRED';

/** The columns `remember` reads. */
export type SessionStateRow = Pick<Session, 'userId' | 'expiresAt' | 'lastSeenAt' | 'revokedAt' | 'revokedReason'>;

const DAY_MS = 24 * 3600 * 1000;
/** lastSeenAt is written at most this often per session and process: a request does not cost a write. */
const LAST_SEEN_RESOLUTION_MS = 60_000;
/**
 * A revoked session's row says when and why it ended (revokedReason), which
 * the audit trail does not record for a plain logout or a deactivation; it is
 * kept this long for support, then deleted with its refresh tokens.
 */
const REVOKED_KEEP_DAYS = 7;
/** Rows deleted per statement by `prune`. */
const PRUNE_BATCH = 1000;

/** One answer for every refresh token that does not work, so none tells an attacker more than another. */
const invalidRefreshToken = () => new DomainError('UNAUTHENTICATED', 'The refresh token is not valid; sign in again');

export interface SessionOptions {
  refreshTokenTtlDays: number;
  sessionMaxDays: number;
  /** How long a process trusts a cached session state without a signal (VIEWER_CACHE_MS). */
  cacheMs: number;
}

/**
 * Sessions: one per sign-in, named by its access tokens (`sid`) and continued
 * by rotating refresh tokens. Each refresh marks the presented token rotated
 * and hands out a new one; a rotated token presented again is taken for theft
 * (one of two holders of the token is not the user) and ends the session.
 *
 * Whether a session stands is checked on every request, so its state is
 * cached per process; an ended session is dropped from every process's cache
 * through pub/sub (`sessions:ended`), which also closes its sockets.
 */
export class SessionService {
  private readonly states: LRUCache<string, SessionState | EndedSession>;
  private readonly ended: AsyncIterableIterator<{ sessionIds: string[]; reason: SessionEndReason }>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly tokens: TokenService,
    private readonly pubsub: ParleyPubSub,
    private readonly log: Logger,
    private readonly options: SessionOptions,
  ) {
    this.states = new LRUCache({ max: 10_000, ttl: Math.max(options.cacheMs, 1) });
    this.ended = pubsub.subscribe('sessions:ended');
    void this.followEnds();
  }

  /** Starts a session for a user who just proved who they are, in the caller's transaction when given. */
  async start(db: Tx | PrismaClient, user: Pick<User, 'id' | 'organizationId'>, client: SessionClient | null): Promise<SessionTokens> {
    const now = new Date();
    const refreshToken = newRefreshToken();
    const session = await db.session.create({
      data: {
        organizationId: user.organizationId,
        userId: user.id,
        createdAt: now,
        lastSeenAt: now,
        expiresAt: this.expiry(now, now),
        ip: client?.ip ?? null,
        userAgent: client?.userAgent ?? null,
        refreshTokens: { create: { tokenHash: refreshTokenHash(refreshToken), createdAt: now } },
      },
    });
    const access = await this.tokens.issue({ userId: user.id, organizationId: user.organizationId, sessionId: session.id });
    return { token: access.token, accessTokenExpiresAt: access.expiresAt, refreshToken, session };
  }

  /**
   * Trades a refresh token for a new access token and a new refresh token.
   * The rotation is one conditional UPDATE (`rotatedAt IS NULL`): of two
   * refreshes of one token, however concurrent, exactly one matches it; the
   * other finds it rotated, which is reuse. Reuse ends the session (audited),
   * so both the thief's and the user's tokens stop working and the user signs
   * in again. Unknown, expired and ended alike: UNAUTHENTICATED, one message.
   */
  async refresh(refreshToken: string, client: SessionClient | null): Promise<SessionTokens & { user: User }> {
    const tokenHash = refreshTokenHash(refreshToken);
    const now = new Date();
    const outcome = await this.prisma.$transaction(async (tx) => {
      const rotated = await tx.refreshToken.updateMany({ where: { tokenHash, rotatedAt: null }, data: { rotatedAt: now } });
      const found = await tx.refreshToken.findUnique({ where: { tokenHash }, select: { session: { include: { user: true } } } });
      if (!found) return { kind: 'invalid' } as const;
      const { user, ...session } = found.session;
      if (rotated.count === 0) {
        const ended = await this.end(tx, { id: session.id }, 'REFRESH_TOKEN_REUSED');
        if (ended.length === 0) return { kind: 'invalid' } as const;
        await audit(tx, {
          organizationId: session.organizationId,
          actorId: null,
          action: 'session.refreshTokenReused',
          targetType: 'Session',
          targetId: session.id,
          data: { userId: session.userId, ip: client?.ip ?? null },
        });
        return { kind: 'reused', session } as const;
      }
      if (session.revokedAt || session.expiresAt <= now || user.deactivatedAt) return { kind: 'invalid' } as const;
      const next = newRefreshToken();
      await tx.refreshToken.create({ data: { tokenHash: refreshTokenHash(next), sessionId: session.id, createdAt: now } });
      const updated = await tx.session.update({
        where: { id: session.id },
        data: {
          expiresAt: this.expiry(session.createdAt, now),
          lastSeenAt: now,
          ...(client ? { ip: client.ip, userAgent: client.userAgent } : {}),
        },
      });
      return { kind: 'rotated', session: updated, user, refreshToken: next } as const;
    });
    if (outcome.kind === 'reused') {
      this.log.warn({ sessionId: outcome.session.id, userId: outcome.session.userId }, 'refresh token reused: session ended');
      this.announce(outcome.session.userId, [outcome.session.id], 'REFRESH_TOKEN_REUSED');
    }
    if (outcome.kind !== 'rotated') throw invalidRefreshToken();
    const { session, user } = outcome;
    this.remember(session.id, session);
    const access = await this.tokens.issue({ userId: user.id, organizationId: user.organizationId, sessionId: session.id });
    return { token: access.token, accessTokenExpiresAt: access.expiresAt, refreshToken: outcome.refreshToken, session, user };
  }

  /** The cached state of a session: undefined when this process does not know it (load and `remember` it). */
  cached(sessionId: string): SessionState | EndedSession | undefined {
    return this.states.get(sessionId);
  }

  /**
   * Why the session does not stand, when this process knows it ended or
   * expired (from the cache alone: no query); null otherwise.
   */
  knownEnd(sessionId: string): SessionEnd | null {
    const state = this.states.get(sessionId);
    if (state === undefined) return null;
    if ('endedBy' in state) return state.endedBy;
    return state.expiresAt <= Date.now() ? 'EXPIRED' : null;
  }

  /** Caches a session's state as loaded (null: no such session). */
  remember(sessionId: string, row: SessionStateRow | null): SessionState | EndedSession {
    const state: SessionState | EndedSession =
      row && !row.revokedAt
        ? { userId: row.userId, expiresAt: row.expiresAt.getTime(), seenAt: row.lastSeenAt.getTime() }
        : { endedBy: row?.revokedReason ?? null };
    this.states.set(sessionId, state);
    return state;
  }

  /**
   * Whether the session admits a request of `userId` now, and if so, records
   * that it was seen (at most once a minute: a fire-and-forget write).
   */
  admits(sessionId: string, state: SessionState | EndedSession, userId: string, now = Date.now()): boolean {
    if ('endedBy' in state || state.userId !== userId || state.expiresAt <= now) return false;
    if (now - state.seenAt >= LAST_SEEN_RESOLUTION_MS) {
      state.seenAt = now;
      this.touch(sessionId, now);
    }
    return true;
  }

  /** The viewer's sessions that still work (the schema pages them). */
  activeWhere(viewer: Viewer): Prisma.SessionWhereInput {
    return { userId: viewer.id, revokedAt: null, expiresAt: { gt: new Date() } };
  }

  /** `logout`: ends the session the request's access token names. */
  async logout(viewer: Viewer, sessionId: string): Promise<boolean> {
    const ended = await this.end(this.prisma, { id: sessionId, userId: viewer.id }, 'LOGOUT');
    this.announce(viewer.id, ended, 'LOGOUT');
    return true;
  }

  /** `logoutEverywhere`: ends every session of the viewer, this one included; resolves with how many. */
  async logoutEverywhere(viewer: Viewer): Promise<number> {
    const ended = await this.prisma.$transaction(async (tx) => {
      const ids = await this.end(tx, { userId: viewer.id }, 'LOGOUT_EVERYWHERE');
      await audit(tx, {
        organizationId: viewer.organizationId,
        actorId: viewer.id,
        action: 'session.logoutEverywhere',
        targetType: 'User',
        targetId: viewer.id,
        data: { sessions: ids.length },
      });
      return ids;
    });
    this.announce(viewer.id, ended, 'LOGOUT_EVERYWHERE');
    return ended.length;
  }

  /**
   * `revokeSession`: ends one of the viewer's own sessions. Anyone else's, in
   * this organization or another, is NOT_FOUND exactly like a missing one.
   * Resolves with false when the session had ended already (nothing changes).
   */
  async revoke(viewer: Viewer, id: string): Promise<boolean> {
    assertId(id, 'Session');
    const ended = await this.prisma.$transaction(async (tx) => {
      const own = await tx.session.findFirst({ where: { id, userId: viewer.id }, select: { id: true } });
      if (!own) throw notFound('Session');
      const ids = await this.end(tx, { id }, 'REVOKED');
      if (ids.length) {
        await audit(tx, {
          organizationId: viewer.organizationId,
          actorId: viewer.id,
          action: 'session.revoke',
          targetType: 'Session',
          targetId: id,
        });
      }
      return ids;
    });
    this.announce(viewer.id, ended, 'REVOKED');
    return ended.length > 0;
  }

  /**
   * Ends the matching sessions that still work, in the caller's transaction,
   * and resolves with their ids: pass them to `announce` once committed.
   */
  async end(db: Tx | PrismaClient, where: Prisma.SessionWhereInput, reason: SessionEndReason): Promise<string[]> {
    const now = new Date();
    const rows = await db.session.updateManyAndReturn({
      where: { ...where, revokedAt: null, expiresAt: { gt: now } },
      data: { revokedAt: now, revokedReason: reason },
      select: { id: true },
    });
    return rows.map((row) => row.id);
  }

  /**
   * After the commit that ended them: drops the sessions here at once and,
   * through pub/sub, in every other process, whose registries close their
   * sockets. Not awaited: a mutation must not hang on Redis; a lost signal
   * leaves other processes at most the cache TTL behind.
   */
  announce(userId: string, sessionIds: string[], reason: SessionEndReason): void {
    if (sessionIds.length === 0) return;
    for (const id of sessionIds) this.states.set(id, { endedBy: reason });
    this.pubsub.publish('sessions:ended', { userId, sessionIds, reason }).catch(() => {});
  }

  /**
   * Deletes expired sessions and sessions revoked more than REVOKED_KEEP_DAYS
   * ago, with their refresh tokens (cascade); resolves with how many. Run by
   * the periodic retention job (LogRetention).
   */
  async prune(now = new Date()): Promise<number> {
    const revokedBefore = new Date(now.getTime() - REVOKED_KEEP_DAYS * DAY_MS);
    let total = 0;
    for (;;) {
      const deleted = await this.prisma.$executeRaw`
        DELETE FROM "Session" WHERE id IN (
          SELECT id FROM "Session" WHERE "expiresAt" < ${now} OR "revokedAt" < ${revokedBefore}
          LIMIT ${PRUNE_BATCH} FOR UPDATE SKIP LOCKED)`;
      total += deleted;
      if (deleted < PRUNE_BATCH) break;
    }
    if (total) this.log.info({ deleted: total }, 'deleted expired and revoked sessions');
    return total;
  }

  async close(): Promise<void> {
    await this.ended.return?.();
  }

  /** Idle expiry from `now`, never past the session's absolute end. */
  private expiry(createdAt: Date, now: Date): Date {
    const idle = now.getTime() + this.options.refreshTokenTtlDays * DAY_MS;
    const absolute = createdAt.getTime() + this.options.sessionMaxDays * DAY_MS;
    return new Date(Math.min(idle, absolute));
  }

  /** Conditional, so processes that each saw the session this minute write once between them. */
  private touch(sessionId: string, now: number): void {
    this.prisma.session
      .updateMany({
        where: { id: sessionId, lastSeenAt: { lt: new Date(now - LAST_SEEN_RESOLUTION_MS) } },
        data: { lastSeenAt: new Date(now) },
      })
      .catch((error: unknown) => this.log.debug({ err: error, sessionId }, 'could not record a session as seen'));
  }

  /** Drops sessions other processes ended from the cache, until `close`. */
  private async followEnds(): Promise<void> {
    for await (const { sessionIds, reason } of this.ended) for (const id of sessionIds) this.states.set(id, { endedBy: reason });
  }
}
