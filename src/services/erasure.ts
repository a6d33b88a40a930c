import type { Viewer } from './viewer.ts';
import type { ErasureMessagePolicy, Organization, PrismaClient, User } from '../generated/prisma/client.ts';
import type { Tx } from '../db/tx.ts';
import { isAdmin, mayGrantRole } from './access.ts';
import { audit, auditedBy } from './audit.ts';
import type { ChannelLog } from './channel-log.ts';
import { conflict, forbidden } from './errors.ts';
import { eraseMessages, messageDeletedPayload } from './messages.ts';
import { isUniqueViolation } from './prisma-errors.ts';

/**
 * Messages removed per transaction under the DELETE policy. A batch holds the
 * row locks of the channels its messages are in until it commits (each
 * removal appends a MESSAGE_DELETED entry, which takes the channel's next
 * seq), so it is kept small: senders wait for at most one batch.
 */
const BATCH = 200;
/** A batch of a few hundred log entries and cascading deletes may outlast Prisma's 5 s default on a busy database. */
const TRANSACTION_LIMITS = { maxWait: 15_000, timeout: 60_000 };

/** Stands in for a password hash: no password verifies against it (verifyPassword needs an `scrypt$…` hash). */
const UNUSABLE_PASSWORD = '!erased';

/** What erasure needs of the auth service (AuthService). */
interface Credentials {
  /** Drops cached viewers of the user in every process. */
  userChanged(userId: string): void;
  endSessions(tx: Tx, userId: string, reason: 'USER_DEACTIVATED'): Promise<string[]>;
  sessionsEnded(userId: string, sessionIds: string[], reason: 'USER_DEACTIVATED'): void;
}

/** What erasure needs of the users service (UserService). */
interface Users {
  /** The user, when the viewer may see them; NOT_FOUND otherwise (another organization's included). */
  get(viewer: Viewer, id: string): Promise<User>;
}

/** The pseudonymous profile an erased user keeps: derived from the id alone, so unique in the organization and free of personal data. */
export function erasedProfile(userId: string): { username: string; displayName: string } {
  const hex = userId.replace(/-/g, '');
  return { username: `erased-${hex}`, displayName: `Former user ${hex.slice(-6)}` };
}

/**
 * Erasing a user's personal data on request (GDPR art. 17, issue 14 §5).
 *
 * One transaction anonymizes the profile (name, username, email, password,
 * last seen), deactivates the user for good, ends every session (their
 * sockets close) and forgets the sessions' addresses, deletes the user's own
 * notifications and idempotency keys and their unattached uploads, and
 * rewrites the copies of their name kept elsewhere: `actorName` and
 * `assigneeName` in request and ticket system events (channel logs),
 * `actorName` in notifications they caused, `assigneeName` in audit data.
 * Addresses and user agents leave the audit entries about them, and their old
 * username leaves failed sign-ins recorded under it. Everything else refers
 * to the user by id, which now resolves to the anonymized profile.
 *
 * Their messages follow the organization's `erasureMessagePolicy`, recorded
 * in the `user.erase` audit entry: DELETE removes every message they sent as
 * an admin's hard delete does (eraseMessages: files, edit history, mentions,
 * reactions on them, notification excerpts, the bodies in the log's
 * snapshots), each with a MESSAGE_DELETED entry in its channel's log so live
 * subscribers see it and replays stay gap-free, BATCH messages per
 * transaction. KEEP leaves them, shown under the anonymized name.
 */
export class ErasureService {
  /** Called when files turned DELETED, so their blobs are freed soon (wiring). */
  scheduleFileCleanup: () => void = () => {};

  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
    private readonly auth: Credentials,
    private readonly users: Users,
  ) {}

  /**
   * Erases a user of the viewer's organization (owners and admins; only
   * owners erase owners; nobody erases themselves, so an organization never
   * loses its last owner this way). Erasing an erased user changes nothing
   * and returns them, after finishing the removal of any message an
   * interrupted erasure left behind.
   */
  async erase(viewer: Viewer, userId: string): Promise<User> {
    if (!isAdmin(viewer)) throw forbidden('Only organization owners and admins erase users');
    const target = await this.users.get(viewer, userId);
    if (!mayGrantRole(viewer, target.role)) throw forbidden('Only owners erase an owner');
    if (target.id === viewer.id) throw forbidden('You cannot erase yourself; another owner or admin can');
    let policy: ErasureMessagePolicy;
    if (target.erasedAt) {
      policy = await this.recordedPolicy(viewer, target.id);
    } else {
      const erased = await this.anonymize(viewer, target);
      policy = erased.policy;
      this.auth.userChanged(target.id);
      this.auth.sessionsEnded(target.id, erased.endedSessions, 'USER_DEACTIVATED');
      if (erased.files) this.scheduleFileCleanup();
    }
    if (policy === 'DELETE') await this.removeMessages(viewer, target.id);
    return this.prisma.user.findUniqueOrThrow({ where: { id: target.id } });
  }

  /** Sets the organization's erasure message policy (owners and admins), audited. */
  async setPolicy(viewer: Viewer, policy: ErasureMessagePolicy): Promise<Organization> {
    if (!isAdmin(viewer)) throw forbidden('Only organization owners and admins change the erasure policy');
    return this.prisma.$transaction(async (tx) => {
      const before = await tx.organization.findUniqueOrThrow({
        where: { id: viewer.organizationId },
        select: { erasureMessagePolicy: true },
      });
      const updated = await tx.organization.update({ where: { id: viewer.organizationId }, data: { erasureMessagePolicy: policy } });
      if (before.erasureMessagePolicy !== policy) {
        await audit(tx, {
          ...auditedBy(viewer),
          action: 'organization.setErasureMessagePolicy',
          targetType: 'Organization',
          targetId: viewer.organizationId,
          data: { from: before.erasureMessagePolicy, to: policy },
        });
      }
      return updated;
    });
  }

  /** The policy the user's erasure applied (from its audit entry): a later change of the setting does not touch it. */
  private async recordedPolicy(viewer: Viewer, userId: string): Promise<ErasureMessagePolicy> {
    const entry = await this.prisma.auditLog.findFirst({
      where: { organizationId: viewer.organizationId, action: 'user.erase', targetType: 'User', targetId: userId },
      orderBy: { id: 'desc' },
      select: { data: true },
    });
    return (entry?.data as { policy?: ErasureMessagePolicy } | null)?.policy ?? 'KEEP';
  }

  /** The profile and everything that copies it, in one transaction. */
  private async anonymize(viewer: Viewer, target: User): Promise<{ policy: ErasureMessagePolicy; endedSessions: string[]; files: number }> {
    const { username, displayName } = erasedProfile(target.id);
    const orgId = viewer.organizationId;
    const userId = target.id;
    try {
      return await this.prisma.$transaction(async (tx) => {
        const [locked] = await tx.$queryRaw<{ username: string; erasedAt: Date | null }[]>`
          SELECT username, "erasedAt" FROM "User" WHERE id = ${userId}::uuid FOR UPDATE`;
        if (!locked) throw conflict('The user was deleted meanwhile');
        // A concurrent erasure committed first: its policy stands.
        if (locked.erasedAt) return { policy: await this.recordedPolicy(viewer, userId), endedSessions: [], files: 0 };
        const { erasureMessagePolicy: policy } = await tx.organization.findUniqueOrThrow({
          where: { id: orgId },
          select: { erasureMessagePolicy: true },
        });
        const messages = await tx.message.count({ where: { senderId: userId } });
        const now = new Date();
        await tx.user.update({
          where: { id: userId },
          data: {
            username,
            displayName,
            email: null,
            passwordHash: UNUSABLE_PASSWORD,
            deactivatedAt: target.deactivatedAt ?? now,
            lastSeenAt: null,
            erasedAt: now,
          },
        });
        const endedSessions = await this.auth.endSessions(tx, userId, 'USER_DEACTIVATED');
        await tx.session.updateMany({ where: { userId }, data: { ip: null, userAgent: null } });
        await tx.notification.deleteMany({ where: { userId } });
        await tx.idempotencyKey.deleteMany({ where: { userId } });
        // Uploads never attached are nobody's record; files on messages follow the messages, on requests stay with them.
        const files = await tx.attachment.updateMany({ where: { uploaderId: userId, state: 'UPLOADED' }, data: { state: 'DELETED' } });
        // Their exports are copies of what they could read: READY ones expire now (the exports sweep deletes
        // the files within a minute), and ones not produced yet are never produced.
        await tx.export.updateMany({ where: { requesterId: userId, status: 'READY' }, data: { expiresAt: now } });
        await tx.export.updateMany({
          where: { requesterId: userId, status: { in: ['PENDING', 'RUNNING'] } },
          data: { status: 'FAILED', error: 'The requester was erased', finishedAt: now },
        });
        await scrubCopiesOfName(tx, orgId, userId, locked.username, displayName);
        await audit(tx, {
          ...auditedBy(viewer),
          action: 'user.erase',
          targetType: 'User',
          targetId: userId,
          data: { policy, messages },
        });
        return { policy, endedSessions, files: files.count };
      }, TRANSACTION_LIMITS);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`The username "${username}" is taken; rename that user first`, { field: 'userId' });
      throw error;
    }
  }

  /**
   * Removes every message the user sent, batch by batch, as hard deletes by
   * the viewer: a MESSAGE_DELETED entry (hard, with the seq, sender and prior
   * state live unread counts need) and a `message.hardDelete` audit entry per
   * message, then eraseMessages. Resolves
   * with how many it removed.
   */
  private async removeMessages(viewer: Viewer, userId: string): Promise<number> {
    let total = 0;
    for (;;) {
      const batch = await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        const candidates = await tx.$queryRaw<{ id: string; channelId: string }[]>`
          SELECT id, "channelId" FROM "Message" WHERE "senderId" = ${userId}::uuid ORDER BY "channelId", seq LIMIT ${BATCH}`;
        if (candidates.length === 0) return { removed: 0, files: 0, more: false };
        // Channel rows first, in one order: every message change locks its
        // channel before the message (the seq bump), so waiting here for a
        // concurrent delete or edit cannot close a cycle.
        const channelIds = [...new Set(candidates.map((c) => c.channelId))];
        await tx.$queryRaw`SELECT id FROM "Channel" WHERE id = ANY(${channelIds}::uuid[]) ORDER BY id FOR UPDATE`;
        const rows = await tx.$queryRaw<{ id: string; channelId: string; seq: number; senderId: string; deletedAt: Date | null }[]>`
          SELECT id, "channelId", seq, "senderId", "deletedAt" FROM "Message" WHERE id = ANY(${candidates.map((c) => c.id)}::uuid[])
          ORDER BY "channelId", seq FOR UPDATE`;
        for (const m of rows) await log.append(m.channelId, 'MESSAGE_DELETED', messageDeletedPayload(m, viewer.id, true));
        // Who removed each message and when, as for an admin's hard delete (never the body).
        await tx.auditLog.createMany({
          data: rows.map((m) => ({
            ...auditedBy(viewer),
            action: 'message.hardDelete',
            targetType: 'Message',
            targetId: m.id,
            data: { channelId: m.channelId, senderId: m.senderId, wasDeleted: m.deletedAt !== null, reason: 'erasure' },
          })),
        });
        const files = await eraseMessages(tx, rows);
        return { removed: rows.length, files, more: candidates.length === BATCH };
      });
      total += batch.removed;
      if (batch.files) this.scheduleFileCleanup();
      if (!batch.more) return total;
    }
  }
}

/**
 * Rewrites the copies of a user's name kept outside their profile, and drops
 * the addresses recorded about them. Request and ticket system events exist
 * only in REQUEST and SUPPORT channels, which bounds the log scan.
 */
async function scrubCopiesOfName(tx: Tx, orgId: string, userId: string, oldUsername: string, displayName: string): Promise<void> {
  const name = JSON.stringify(displayName);
  await tx.$executeRaw`
    UPDATE "ChannelEvent" e SET payload = e.payload
      || CASE WHEN e."actorId" = ${userId}::uuid AND e.payload ? 'actorName' THEN jsonb_build_object('actorName', ${name}::jsonb) ELSE '{}'::jsonb END
      || CASE WHEN e.payload->>'assigneeId' = ${userId} AND e.payload ? 'assigneeName' THEN jsonb_build_object('assigneeName', ${name}::jsonb) ELSE '{}'::jsonb END
    WHERE e."channelId" IN (SELECT id FROM "Channel" WHERE "organizationId" = ${orgId}::uuid AND kind IN ('REQUEST', 'SUPPORT'))
      AND e.type = 'SYSTEM_EVENT'
      AND ((e."actorId" = ${userId}::uuid AND e.payload ? 'actorName') OR e.payload->>'assigneeId' = ${userId})`;
  await tx.$executeRaw`
    UPDATE "Notification" SET data = data || jsonb_build_object('actorName', ${name}::jsonb)
    WHERE "organizationId" = ${orgId}::uuid AND "actorId" = ${userId}::uuid AND data ? 'actorName'`;
  await tx.$executeRaw`
    UPDATE "AuditLog" SET data = data || jsonb_build_object('assigneeName', ${name}::jsonb)
    WHERE "organizationId" = ${orgId}::uuid AND data->>'assigneeId' = ${userId} AND data ? 'assigneeName'`;
  // Sign-ins (failed or not) and refresh-token reuse recorded the address and user agent of the user's clients.
  await tx.$executeRaw`
    UPDATE "AuditLog" SET data = data - 'ip' - 'userAgent'
    WHERE "organizationId" = ${orgId}::uuid AND data ?| array['ip', 'userAgent']
      AND ((("targetType" = 'User' AND "targetId" = ${userId}) OR "actorId" = ${userId}::uuid) OR data->>'userId' = ${userId})`;
  // A failed sign-in under a name the organization had no user by keeps the name tried (and the address): when it is theirs, both go.
  await tx.$executeRaw`
    UPDATE "AuditLog" SET data = data - 'username' - 'ip' - 'userAgent'
    WHERE "organizationId" = ${orgId}::uuid AND action = 'session.signInFailed' AND data->>'username' = ${oldUsername}`;
}
