import type { Viewer } from './viewer.ts';
import { LRUCache } from 'lru-cache';
import type { PrismaClient, User } from '../generated/prisma/client.ts';
import type { ParleyPubSub } from '../bus/pubsub.ts';
import { hashPassword, verifyPassword } from '../auth/password.ts';
import type { TokenService } from '../auth/tokens.ts';
import { audit } from './audit.ts';
import { conflict, DomainError } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import { assertUsernameAllowed } from './mentions.ts';

export interface RegisterOrganizationInput {
  name: string;
  slug: string;
  username: string;
  displayName: string;
  email?: string | null;
  password: string;
}

export interface AuthPayload {
  token: string;
  user: User;
}

export class AuthService {
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
    private readonly hashCost: number,
    viewerCacheMs: number,
  ) {
    this.viewers = new LRUCache({ max: 10_000, ttl: Math.max(viewerCacheMs, 1) });
    this.changes = pubsub.subscribe('users:changed');
    void this.followChanges();
  }

  hash(password: string): Promise<string> {
    return hashPassword(password, this.hashCost);
  }

  /** A token for a user, without a password check: only for trusted callers such as the seed script. */
  issueToken(user: Pick<User, 'id' | 'organizationId'>): Promise<string> {
    return this.tokens.issue({ userId: user.id, organizationId: user.organizationId });
  }

  async registerOrganization(input: RegisterOrganizationInput): Promise<AuthPayload> {
    assertUsernameAllowed(input.username);
    const passwordHash = await this.hash(input.password);
    try {
      const user = await this.prisma.$transaction(async (tx) => {
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
        return owner;
      });
      return { token: await this.issueToken(user), user };
    } catch (error) {
      // The slug is the only unique key this transaction can hit: the owner is the new organization's first user.
      if (isUniqueViolation(error)) throw conflict(`The organization slug "${input.slug}" is taken`, { field: 'slug' });
      throw error;
    }
  }

  async login(organizationSlug: string, username: string, password: string): Promise<AuthPayload> {
    const user = await this.prisma.user.findFirst({
      where: { username, organization: { slug: organizationSlug } },
    });
    this.decoyHash ??= this.hash('decoy password');
    const ok = await verifyPassword(password, user?.passwordHash ?? (await this.decoyHash));
    if (!user || !ok || user.deactivatedAt) {
      throw new DomainError('UNAUTHENTICATED', 'Unknown organization, username or password');
    }
    return { token: await this.issueToken(user), user };
  }

  /** The viewer behind a token, or null when the token is bad or the user is deactivated. */
  async viewerFromToken(token: string): Promise<Viewer | null> {
    const claims = await this.tokens.verify(token);
    if (!claims) return null;
    const cached = this.viewers.get(claims.userId);
    if (cached !== undefined) return cached && cached.organizationId === claims.organizationId ? cached : null;
    const user = await this.prisma.user.findUnique({
      where: { id: claims.userId },
      select: { id: true, organizationId: true, role: true, username: true, displayName: true, deactivatedAt: true },
    });
    if (!user || user.deactivatedAt) {
      if (user) this.viewers.set(user.id, false);
      return null;
    }
    const { deactivatedAt: _, ...viewer } = user;
    this.viewers.set(viewer.id, viewer);
    return viewer.organizationId === claims.organizationId ? viewer : null;
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
