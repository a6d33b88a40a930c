import type { Viewer } from './viewer.ts';
import { LRUCache } from 'lru-cache';
import type { PrismaClient, SessionEndReason, User } from '../generated/prisma/client.ts';
import type { ParleyPubSub } from '../bus/pubsub.ts';
import type { Tx } from '../db/tx.ts';
import { hashPassword, verifyPassword } from '../auth/password.ts';
import type { TokenClaims, TokenService } from '../auth/tokens.ts';
import { audit } from './audit.ts';
import type { RateLimits } from './rate-limits.ts';
import { badInput, conflict, DomainError } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import { assertUsernameAllowed } from './mentions.ts';
import type { SessionClient, SessionEnd, SessionService, SessionTokens } from './sessions.ts';

export interface RegisterOrganizationInput {
  name: string;
  slug: string;
  username: string;
  displayName: string;
  email?: string | null;
  password: string;
}

/** A signed-in user's new session: its tokens and the user. */
export interface AuthPayload extends SessionTokens {
  user: User;
}

/** Who a request's access token stands for. */
export interface Authenticated {
  viewer: Viewer;
  /** The session the token names (`logout` ends it; `sessions` marks it current). */
  sessionId: string;
}

const VIEWER_SELECT = { id: true, organizationId: true, role: true, username: true, displayName: true, deactivatedAt: true } as const;

export class AuthService {
  private limits: RateLimits | null = null;
  // A hash of a throwaway password at this service's cost, verified when the user
  // does not exist so a failed login costs the same whether or not the username is known.
  private decoyHash: Promise<string> | null = null;
  /**
   * Viewers by user id (false: deactivated), so a request costs no user query.
   * Changes evict entries everywhere through pub/sub (`userChanged`); the TTL
   * bounds staleness should a signal be lost while Redis is down.
   */
  private readonly viewers: LRUCache<string, Viewer | false>;
  private readonly changes: AsyncIterableIterator<{ userId: string }>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly tokens: TokenService,
    private readonly pubsub: ParleyPubSub,
    private readonly sessions: SessionService,
    private readonly hashCost: number,
    viewerCacheMs: number,
  ) {
    this.viewers = new LRUCache({ max: 10_000, ttl: Math.max(viewerCacheMs, 1) });
    this.changes = pubsub.subscribe('users:changed');
    void this.followChanges();
  }

  /** Sign-in back-off (wiring: once per app). */
  useRateLimits(limits: RateLimits): void {
    this.limits = limits;
  }

  hash(password: string): Promise<string> {
    return hashPassword(password, this.hashCost);
  }

  /**
   * A new session's access token for a user, without a password check: only
   * for trusted callers such as the seed script and the benchmarks.
   */
  async issueToken(user: Pick<User, 'id' | 'organizationId'>, client: SessionClient | null = null): Promise<string> {
    return (await this.sessions.start(this.prisma, user, client)).token;
  }

  async registerOrganization(input: RegisterOrganizationInput, client: SessionClient | null): Promise<AuthPayload> {
    assertUsernameAllowed(input.username);
    const passwordHash = await this.hash(input.password);
    try {
      return await this.prisma.$transaction(async (tx) => {
        const org = await tx.organization.create({ data: { name: input.name, slug: input.slug } });
        const owner = await tx.user.create({
          data: {
            organizationId: org.id,
            username: input.username,
            displayName: input.displayName,
            email: input.email ?? null,
            role: 'OWNER',
            passwordHash,
          },
        });
        await audit(tx, {
          organizationId: org.id,
          actorId: owner.id,
          action: 'organization.register',
          targetType: 'Organization',
          targetId: org.id,
        });
        return { ...(await this.sessions.start(tx, owner, client)), user: owner };
      });
    } catch (error) {
      // The slug is the only unique key this transaction can hit: the owner is the new organization's first user.
      if (isUniqueViolation(error)) throw conflict(`The organization slug "${input.slug}" is taken`, { field: 'slug' });
      throw error;
    }
  }

  async login(organizationSlug: string, username: string, password: string, client: SessionClient | null): Promise<AuthPayload> {
    // Sign-in limits count by the name asked for, found or not: a lock tells nothing about the account.
    const account = { organization: organizationSlug, username };
    const ip = client?.ip ?? 'unknown';
    await this.limits?.assertMaySignIn(account, ip);
    // The organization first, found or not: a failure is audited in it, and an
    // unknown username costs the same queries as a known one.
    const organization = await this.prisma.organization.findUnique({ where: { slug: organizationSlug }, select: { id: true } });
    const user = organization ? await this.prisma.user.findFirst({ where: { username, organizationId: organization.id } }) : null;
    this.decoyHash ??= this.hash('decoy password');
    const ok = await verifyPassword(password, user?.passwordHash ?? (await this.decoyHash));
    if (!user || !ok || user.deactivatedAt) {
      await this.limits?.signInFailed(account, ip);
      if (organization) {
        const reason = !user ? 'UNKNOWN_USER' : !ok ? 'WRONG_PASSWORD' : 'DEACTIVATED';
        await this.auditFailedSignIn(organization.id, username, user, reason, client);
      }
      throw new DomainError('UNAUTHENTICATED', 'Unknown organization, username or password');
    }
    await this.limits?.signInSucceeded(account, ip);
    return this.prisma.$transaction(async (tx) => {
      const tokens = await this.sessions.start(tx, user, client);
      await audit(tx, {
        organizationId: user.organizationId,
        actorId: user.id,
        action: 'session.signIn',
        targetType: 'User',
        targetId: user.id,
        data: { sessionId: tokens.session.id, ip: client?.ip ?? null, userAgent: client?.userAgent ?? null },
      });
      return { ...tokens, user };
    });
  }

  /**
   * A failed sign-in as its organization's admins see it: against the user
   * when the username exists, else against the organization with the name
   * tried; never the password.
   */
  private async auditFailedSignIn(
    organizationId: string,
    username: string,
    user: Pick<User, 'id'> | null,
    reason: 'UNKNOWN_USER' | 'WRONG_PASSWORD' | 'DEACTIVATED',
    client: SessionClient | null,
  ): Promise<void> {
    await audit(this.prisma, {
      organizationId,
      actorId: null,
      action: 'session.signInFailed',
      targetType: user ? 'User' : 'Organization',
      targetId: user?.id ?? organizationId,
      data: {
        ...(user ? {} : { username }),
        reason,
        ip: client?.ip ?? null,
        userAgent: client?.userAgent ?? null,
      },
    });
  }

  /** `refreshSession`: new tokens for a refresh token (see SessionService.refresh). */
  refresh(refreshToken: string, client: SessionClient | null): Promise<AuthPayload> {
    return this.sessions.refresh(refreshToken, client);
  }

  /**
   * Who an access token stands for, or null when the token is bad or expired,
   * its session ended or expired, or its user is deactivated. On every
   * request's path: the session's state and the viewer are cached per process
   * (ended sessions and changed users are evicted everywhere through pub/sub),
   * so a request costs no query; when neither is cached, one query loads both.
   */
  async authenticate(token: string): Promise<Authenticated | null> {
    const claims = await this.tokens.verify(token);
    return claims ? this.authenticateSession(claims) : null;
  }

  /**
   * Who a session stands for, or null when it ended or expired or its user is
   * deactivated: `authenticate` without the token. For a socket, admitted
   * once with a token: its operations go on as long as its session stands,
   * past the access token's own expiry, since an ended session closes the
   * socket at once anyway (SocketRegistry).
   */
  async authenticateSession(claims: TokenClaims): Promise<Authenticated | null> {
    let state = this.sessions.cached(claims.sessionId);
    let viewer = this.viewers.get(claims.userId);
    if (state === undefined) {
      const row = await this.prisma.session.findUnique({
        where: { id: claims.sessionId },
        select: {
          userId: true,
          expiresAt: true,
          lastSeenAt: true,
          revokedAt: true,
          revokedReason: true,
          user: { select: VIEWER_SELECT },
        },
      });
      state = this.sessions.remember(claims.sessionId, row);
      if (row) viewer = this.rememberViewer(row.user);
    }
    if (!this.sessions.admits(claims.sessionId, state, claims.userId)) return null;
    if (viewer === undefined) {
      const user = await this.prisma.user.findUnique({ where: { id: claims.userId }, select: VIEWER_SELECT });
      viewer = user ? this.rememberViewer(user) : false;
    }
    if (!viewer || viewer.organizationId !== claims.organizationId) return null;
    return { viewer, sessionId: claims.sessionId };
  }

  /**
   * Why the session no longer stands, when this process knows (from the cache
   * `authenticate` fills and `sessions:ended` updates: no query); else null.
   */
  sessionEnded(sessionId: string): SessionEnd | null {
    return this.sessions.knownEnd(sessionId);
  }

  /** The viewer behind an access token, or null (see `authenticate`). */
  async viewerFromToken(token: string): Promise<Viewer | null> {
    return (await this.authenticate(token))?.viewer ?? null;
  }

  /**
   * Changes the viewer's password and ends every other session of theirs; the
   * one making the change stays. A wrong current password is BAD_USER_INPUT
   * on `currentPassword`, not UNAUTHENTICATED: the caller is signed in, and
   * clients take UNAUTHENTICATED as "sign in again". Resolves with how many
   * sessions it ended. Wrong current passwords back off like failed sign-ins
   * (counted per user): a stolen access token must not become a way to guess
   * the password.
   */
  async changePassword(viewer: Viewer, sessionId: string, currentPassword: string, newPassword: string, ip: string): Promise<number> {
    const account = { organization: viewer.organizationId, username: `#${viewer.id}` };
    await this.limits?.assertMaySignIn(account, ip);
    const user = await this.prisma.user.findUniqueOrThrow({ where: { id: viewer.id }, select: { passwordHash: true } });
    if (!(await verifyPassword(currentPassword, user.passwordHash))) {
      await this.limits?.signInFailed(account, ip);
      throw badInput('currentPassword', 'The current password is not right');
    }
    await this.limits?.signInSucceeded(account, ip);
    const passwordHash = await this.hash(newPassword);
    const ended = await this.prisma.$transaction(async (tx) => {
      await tx.user.update({ where: { id: viewer.id }, data: { passwordHash } });
      const ids = await this.sessions.end(tx, { userId: viewer.id, id: { not: sessionId } }, 'PASSWORD_CHANGED');
      await audit(tx, {
        organizationId: viewer.organizationId,
        actorId: viewer.id,
        action: 'user.changePassword',
        targetType: 'User',
        targetId: viewer.id,
        data: { endedSessions: ids.length },
      });
      return ids;
    });
    this.sessions.announce(viewer.id, ended, 'PASSWORD_CHANGED');
    return ended.length;
  }

  /** Ends every session of a user in the caller's transaction (deactivation); pass the ids to `sessionsEnded` once committed. */
  endSessions(tx: Tx, userId: string, reason: SessionEndReason): Promise<string[]> {
    return this.sessions.end(tx, { userId }, reason);
  }

  /** After the commit that ended them: drops the sessions in every process and closes their sockets. */
  sessionsEnded(userId: string, sessionIds: string[], reason: SessionEndReason): void {
    this.sessions.announce(userId, sessionIds, reason);
  }

  private rememberViewer(user: Viewer & { deactivatedAt: Date | null }): Viewer | false {
    const { deactivatedAt, ...viewer } = user;
    const cached = deactivatedAt ? false : viewer;
    this.viewers.set(viewer.id, cached);
    return cached;
  }

  /**
   * Call after a user's role or active state changed (committed): drops the
   * cached viewer here at once and, through pub/sub, in every other process.
   */
  userChanged(userId: string): void {
    this.viewers.delete(userId);
    // Not awaited: a mutation must not hang on Redis. A lost signal leaves
    // other processes at most the cache TTL behind.
    this.pubsub.publish('users:changed', { userId }).catch(() => {});
  }

  /** Drops other processes' changes from the cache until `close`. */
  private async followChanges(): Promise<void> {
    for await (const { userId } of this.changes) this.viewers.delete(userId);
  }

  async close(): Promise<void> {
    await this.changes.return?.();
  }
}
