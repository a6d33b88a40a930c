import type { Viewer } from './viewer.ts';
import type { Prisma, PrismaClient, Role, User } from '../generated/prisma/client.ts';
import type { Tx } from '../db/tx.ts';
import { assertId, isAdmin, listedUserWhere, mayGrantRole, readableUserWhere } from './access.ts';
import { audit } from './audit.ts';
import { conflict, DomainError, forbidden, notFound } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import { assertUsernameAllowed } from './mentions.ts';

export interface CreateUserInput {
  username: string;
  displayName: string;
  email?: string | null;
  role: Role;
  password: string;
}

type Query = { select?: Prisma.UserSelect; include?: Prisma.UserInclude };

/** What user administration needs of the auth service (AuthService). */
interface Credentials {
  hash(password: string): Promise<string>;
  /** Drops cached sessions of the user in every process. */
  userChanged(userId: string): void;
  /** Ends every session of the user in the caller's transaction; resolves with their ids for `sessionsEnded`. */
  endSessions(tx: Tx, userId: string, reason: 'USER_DEACTIVATED'): Promise<string[]>;
  /** After the commit: the ended sessions stop working in every process and their sockets close. */
  sessionsEnded(userId: string, sessionIds: string[], reason: 'USER_DEACTIVATED'): void;
}

/** Organization user administration: only owners and admins change users. */
export class UserService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly auth: Credentials,
  ) {}

  private assertAdmin(viewer: Viewer) {
    if (!isAdmin(viewer)) throw forbidden('Only organization owners and admins manage users');
  }

  /** Owners are the only ones who may create, promote or touch other owners. */
  private assertMayGrant(viewer: Viewer, role: Role) {
    if (!mayGrantRole(viewer, role)) throw forbidden('Only owners grant the OWNER role');
  }

  /** Users a viewer may look up: `mayReadUser` (access.ts). */
  visibleWhere(viewer: Viewer): Prisma.UserWhereInput {
    return readableUserWhere(viewer);
  }

  /** The `users` list: `mayListUser` (access.ts). */
  listWhere(viewer: Viewer): Prisma.UserWhereInput {
    return listedUserWhere(viewer);
  }

  /**
   * The ids, each checked to be a user the viewer may see (`user(id)`'s rule);
   * any other is NOT_FOUND, exactly like a missing one. One query.
   */
  async visibleIds(viewer: Viewer, ids: string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    for (const id of unique) assertId(id, 'User');
    const found = await this.prisma.user.findMany({ where: { id: { in: unique }, ...this.visibleWhere(viewer) }, select: { id: true } });
    if (found.length !== unique.length) throw notFound('User');
    return unique;
  }

  async get(viewer: Viewer, id: string, query: Query = {}): Promise<User> {
    assertId(id, 'User');
    const user = await this.prisma.user.findFirst({ ...query, where: { id, ...this.visibleWhere(viewer) } });
    if (!user) throw notFound('User');
    return user as User;
  }

  async create(viewer: Viewer, input: CreateUserInput): Promise<User> {
    this.assertAdmin(viewer);
    this.assertMayGrant(viewer, input.role);
    assertUsernameAllowed(input.username);
    const passwordHash = await this.auth.hash(input.password);
    try {
      return await this.prisma.$transaction(async (tx) => {
        const user = await tx.user.create({
          data: {
            organizationId: viewer.organizationId,
            username: input.username,
            displayName: input.displayName,
            email: input.email ?? null,
            role: input.role,
            passwordHash,
          },
        });
        await audit(tx, {
          organizationId: viewer.organizationId,
          actorId: viewer.id,
          action: 'user.create',
          targetType: 'User',
          targetId: user.id,
          data: { role: input.role },
        });
        return user;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`The username "${input.username}" is taken`, { field: 'username' });
      throw error;
    }
  }

  async changeRole(viewer: Viewer, userId: string, role: Role): Promise<User> {
    this.assertAdmin(viewer);
    const target = await this.get(viewer, userId);
    this.assertMayGrant(viewer, role);
    this.assertMayGrant(viewer, target.role);
    if (target.id === viewer.id) throw forbidden('You cannot change your own role');
    const updated = await this.prisma.$transaction(async (tx) => {
      const user = await tx.user.update({ where: { id: target.id }, data: { role } });
      await audit(tx, {
        organizationId: viewer.organizationId,
        actorId: viewer.id,
        action: 'user.changeRole',
        targetType: 'User',
        targetId: user.id,
        data: { from: target.role, to: role },
      });
      return user;
    });
    this.auth.userChanged(target.id);
    return updated;
  }

  /**
   * A deactivated user's tokens stop working at once, in every process
   * (AuthService.userChanged), and their sessions end: reactivation does not
   * bring old tokens back, the user signs in again.
   */
  async setActive(viewer: Viewer, userId: string, active: boolean): Promise<User> {
    this.assertAdmin(viewer);
    const target = await this.get(viewer, userId);
    this.assertMayGrant(viewer, target.role);
    if (active && target.erasedAt) throw conflict('An erased user cannot be reactivated: their personal data is gone');
    // Already so: nothing changes and nothing is audited (reactivating oneself, who is signed in, is such a case).
    if ((target.deactivatedAt === null) === active) return target;
    if (target.id === viewer.id) throw new DomainError('BAD_USER_INPUT', 'You cannot deactivate yourself', { field: 'userId' });
    const { user: updated, endedSessions } = await this.prisma.$transaction(async (tx) => {
      const user = await tx.user.update({ where: { id: target.id }, data: { deactivatedAt: active ? null : new Date() } });
      await audit(tx, {
        organizationId: viewer.organizationId,
        actorId: viewer.id,
        action: active ? 'user.reactivate' : 'user.deactivate',
        targetType: 'User',
        targetId: user.id,
      });
      return { user, endedSessions: active ? [] : await this.auth.endSessions(tx, target.id, 'USER_DEACTIVATED') };
    });
    this.auth.userChanged(target.id);
    this.auth.sessionsEnded(target.id, endedSessions, 'USER_DEACTIVATED');
    return updated;
  }
}
