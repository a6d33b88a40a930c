import { v7 as uuidv7 } from 'uuid';
import type { Viewer } from './viewer.ts';
import { Prisma, type Message, type PrismaClient } from '../generated/prisma/client.ts';
import type { ChannelEventOf, ChannelEventPayloads } from '../bus/events.ts';
import {
  assertId,
  channelAccess,
  isAdmin,
  isStaff,
  maySeeDeletedContent,
  mayWriteSql,
  slowedDown,
  slowModeSql,
  writableChannel,
} from './access.ts';
import { audit, auditedBy } from './audit.ts';
import { bumpSeq, type ChannelLog } from './channel-log.ts';
import type { Tx } from '../db/tx.ts';
import { badInput, conflict, DomainError, forbidden, notFound } from './errors.ts';
import { checkClientMessageId, checkCustomFields, cleanBody, messageSnapshot } from './message-content.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import { columns } from '../db/columns.ts';
import { notificationSignals, type MentionService, type RefPlan } from './mentions.ts';
import type { AttachmentService } from './attachments.ts';
import type { RateLimits } from './rate-limits.ts';
import type { CustomFieldCheck } from './custom-fields.ts';

export interface SendMessageInput {
  channelId: string;
  body: string;
  parentId?: string | null;
  clientMessageId?: string | null;
  customFields?: unknown;
  /** Uploads of the sender's to attach, in this order (uploadFile). */
  attachmentIds?: readonly string[] | null;
}

type Query = { select?: Prisma.MessageSelect; include?: Prisma.MessageInclude };

/** A JSON column value as a raw-query parameter (SQL NULL for none). */
const jsonParam = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));

export interface DeleteResult {
  messageId: string;
  hard: boolean;
  /** Null after a hard delete. */
  message: Message | null;
}

/**
 * A rule another service keeps about sends (a support ticket's first
 * response): a data-modifying statement that runs inside the send's own
 * statement, so it commits with the message or not at all. It may read `msg`,
 * the inserted row (none when the write guard refused). Null when this send
 * does not concern the rule, which then costs the send nothing.
 */
export type SendRule = (viewer: Viewer, channelId: string) => Prisma.Sql | null;

export class MessageService {
  private readonly sendRules: SendRule[] = [];
  private attachments: AttachmentService | null = null;
  private limits: RateLimits | null = null;
  private customFields: CustomFieldCheck | null = null;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
    private readonly bodyMax: number,
    private readonly mentions: MentionService,
  ) {}

  /** Lets slow mode take members' turns (wiring: once per app). */
  useRateLimits(limits: RateLimits): void {
    this.limits = limits;
  }

  /** Checks sends' customFields against the organization's definitions (wiring: once per app). */
  useCustomFields(check: CustomFieldCheck): void {
    this.customFields = check;
  }

  /** Lets sends carry files (wiring: once per app). */
  useAttachments(attachments: AttachmentService): void {
    this.attachments = attachments;
  }

  /** Adds a rule to every send (wiring: once per app, before requests). */
  addSendRule(rule: SendRule): void {
    this.sendRules.push(rule);
  }

  /** A body as it is stored: trimmed, not empty, within MESSAGE_BODY_MAX. */
  cleanBody(body: string): string {
    return cleanBody(body, this.bodyMax);
  }

  /** A message the viewer may read: its channel must be readable. */
  async get(viewer: Viewer, id: string, query: Query = {}): Promise<Message> {
    assertId(id, 'Message');
    const message = await this.prisma.message.findFirst({ ...query, where: { id, organizationId: viewer.organizationId } });
    if (!message) throw notFound('Message');
    const access = await channelAccess(this.prisma, viewer, message.channelId);
    if (!access.canRead) throw notFound('Message');
    return message as Message;
  }

  /**
   * Sends a message. With a clientMessageId the send is idempotent: the unique
   * (sender, clientMessageId) constraint decides, so a retry that races the
   * original rolls back (seq included) and returns the original.
   */
  async send(viewer: Viewer, input: SendMessageInput): Promise<Message> {
    const attachmentIds = input.attachmentIds ?? [];
    // A message may be files alone.
    const body = attachmentIds.length && !input.body.trim() ? '' : this.cleanBody(input.body);
    checkClientMessageId(input.clientMessageId);
    checkCustomFields(input.customFields);
    assertId(input.channelId, 'Channel');
    if (!this.customFields) throw new Error('MessageService.useCustomFields was not called');
    // Checked against the definitions (cached: no query per send), stored as normalized.
    input = { ...input, customFields: await this.customFields.validate(viewer.organizationId, 'MESSAGE', input.customFields ?? null) };
    const channelId = input.channelId;
    let parentId: string | null = null;
    if (input.parentId) {
      // A reply needs its parent looked up, so the rights come first: a
      // non-member must not learn which message ids exist in the channel.
      await writableChannel(this.prisma, viewer, channelId);
      assertId(input.parentId, 'Parent message');
      const parent = await this.prisma.message.findFirst({
        where: { id: input.parentId, channelId },
        select: { id: true, parentId: true },
      });
      if (!parent) throw badInput('parentId', 'parentId must be a message of the same channel');
      // Threads are one level deep: a reply to a reply joins the root's thread.
      parentId = parent.parentId ?? parent.id;
    }
    // Mentions and links: nothing to do (and no cost) for a body without '@'.
    const plan = await this.mentions.plan(viewer, channelId, body);
    if (attachmentIds.length) {
      if (!this.attachments) throw new Error('MessageService.useAttachments was not called');
      await this.attachments.attachable(viewer, attachmentIds);
    }
    // Slow mode costs nothing until the statement's guard refuses for it;
    // then the member's turn is taken (across processes) and the statement
    // runs again without that guard.
    let giveTurnBack: (() => Promise<void>) | null = null;
    try {
      for (let attempt = 0; ; attempt++) {
        const message = await this.insert(viewer, channelId, { body, parentId, input, plan, turnTaken: giveTurnBack !== null });
        if (message) return message;
        // The statement's guard refused: name the reason. Should the rights
        // have changed in between, try once more.
        const access = await writableChannel(this.prisma, viewer, channelId);
        if (attachmentIds.length) await this.attachments?.attachable(viewer, attachmentIds);
        if (!giveTurnBack && slowedDown(access) && this.limits) {
          giveTurnBack = await this.limits.slowModeTurn(viewer.id, channelId, access.channel.slowModeSeconds);
          continue;
        }
        if (attempt > 0) throw forbidden('You cannot post in this channel');
      }
    } catch (error) {
      await giveTurnBack?.();
      // A retry of a message that was sent: slow mode refuses the retry, which
      // gets the original instead, like any retry of a clientMessageId.
      const retried = error instanceof DomainError && error.code === 'RATE_LIMITED' && input.clientMessageId;
      if (!input.clientMessageId || !(retried || isUniqueViolation(error))) throw error;
      const original = await this.prisma.message.findUnique({
        where: { senderId_clientMessageId: { senderId: viewer.id, clientMessageId: input.clientMessageId } },
      });
      if (!original) throw error;
      if (retried && original.channelId !== channelId) throw error;
      if (original.channelId !== channelId) {
        throw conflict('This clientMessageId was already used for a message in another channel', { field: 'clientMessageId' });
      }
      return original;
    }
  }

  /**
   * Writes a message and its MESSAGE_ADDED event in one statement, guarded by
   * the write rule: atomic on its own (a duplicate clientMessageId undoes the
   * seq bump), one round trip, and null when the viewer may not post.
   */
  private insert(
    viewer: Viewer,
    channelId: string,
    {
      body,
      parentId,
      input,
      plan,
      turnTaken,
    }: { body: string; parentId: string | null; input: SendMessageInput; plan: RefPlan | null; turnTaken: boolean },
  ): Promise<Message | null> {
    const draft: Message = {
      id: uuidv7(),
      organizationId: viewer.organizationId,
      channelId,
      seq: 0, // taken by the statement
      senderId: viewer.id,
      body,
      parentId,
      clientMessageId: input.clientMessageId ?? null,
      customFields: (input.customFields ?? null) as Message['customFields'],
      editedAt: null,
      deletedAt: null,
      deletedById: null,
      createdAt: new Date(),
    };
    const rules: Prisma.Sql[] = [];
    for (const rule of this.sendRules) {
      const statement = rule(viewer, channelId);
      if (statement)
        rules.push(Prisma.sql`,
        ${Prisma.raw(`send_rule_${rules.length}`)} AS (${statement})`);
    }
    const files = this.attachments?.sendSql(viewer, input.attachmentIds ?? []) ?? null;
    const write = turnTaken ? mayWriteSql(viewer) : Prisma.sql`${mayWriteSql(viewer)} AND ${slowModeSql(viewer)}`;
    const guard = files ? Prisma.sql`${write} AND ${files.guard}` : write;
    return this.channelLog.statement(async (db) => {
      const [row] = await db.$queryRaw<(Message & { notified: Parameters<typeof notificationSignals>[0] })[]>`
        WITH ${files ? files.lock : Prisma.empty} ${bumpSeq(channelId, true, guard)},
        msg AS (
          INSERT INTO "Message" (id, "organizationId", "channelId", seq, "senderId", body, "parentId", "clientMessageId", "customFields", "createdAt")
          SELECT ${draft.id}::uuid, ${draft.organizationId}::uuid, ${draft.channelId}::uuid, bump."lastSeq", ${draft.senderId}::uuid,
            ${draft.body}, ${draft.parentId}::uuid, ${draft.clientMessageId}, ${jsonParam(draft.customFields)}::jsonb, ${draft.createdAt}
          FROM bump
          RETURNING ${columns('Message')}
        ),
        ev AS (
          INSERT INTO "ChannelEvent" ("channelId", seq, "organizationId", type, payload, "actorId", "createdAt")
          SELECT "channelId", seq, "organizationId", 'MESSAGE_ADDED'::"ChannelEventType",
            jsonb_set(${JSON.stringify(messageSnapshot(draft))}::jsonb, '{seq}', to_jsonb(seq)), "senderId", "createdAt"
          FROM msg
        )${files ? files.attach : Prisma.empty}${rules.length ? Prisma.join(rules, '') : Prisma.empty}${this.mentions.sendSql(viewer, channelId, plan, body)}
        SELECT ${columns('Message')}, ${this.mentions.notifiedColumn} FROM msg`;
      if (!row) return { result: null, event: null };
      const { notified, ...message } = row;
      const event: ChannelEventOf<'MESSAGE_ADDED'> = {
        channelId,
        seq: message.seq,
        type: 'MESSAGE_ADDED',
        actorId: viewer.id,
        createdAt: message.createdAt.toISOString(),
        payload: messageSnapshot(message),
      };
      const signals = notificationSignals(notified, {
        organizationId: message.organizationId,
        actorId: viewer.id,
        messageId: message.id,
        channelId,
        createdAt: message.createdAt,
      });
      return { result: message, event, signals };
    });
  }

  /** Loads a message for a change inside the transaction, after the channel row is locked by the seq bump. */
  private async lockedMessage(tx: Tx, viewer: Viewer, id: string): Promise<Message> {
    const message = await tx.message.findFirst({ where: { id, organizationId: viewer.organizationId } });
    if (!message) throw notFound('Message');
    return message;
  }

  async edit(viewer: Viewer, id: string, newBody: string): Promise<Message> {
    assertId(id, 'Message');
    const body = this.cleanBody(newBody);
    const current = await this.get(viewer, id);
    await writableChannel(this.prisma, viewer, current.channelId);
    if (current.senderId !== viewer.id) throw forbidden('Only the author edits a message');
    if (current.deletedAt) throw conflict('A deleted message cannot be edited');
    if (current.body === body) return current;
    // A broadcast the edit adds is checked like one a send makes; @here learns who is online.
    const plan = await this.mentions.plan(viewer, current.channelId, body, current.body);
    const refsMayChange = plan !== null || current.body.includes('@');
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      let updated!: Message;
      await log.append(current.channelId, 'MESSAGE_EDITED', async () => {
        const message = await this.lockedMessage(tx, viewer, id);
        if (message.deletedAt) throw conflict('A deleted message cannot be edited');
        await tx.messageEdit.create({
          data: { organizationId: viewer.organizationId, messageId: id, editorId: viewer.id, previousBody: message.body },
        });
        updated = await tx.message.update({ where: { id }, data: { body, editedAt: new Date() } });
        if (refsMayChange) await this.mentions.afterEdit(tx, viewer, updated, body, plan, (userId, signal) => log.signal(userId, signal));
        return messageSnapshot(updated);
      });
      return updated;
    });
  }

  /**
   * Soft delete (author, staff, channel admins): the row stays, its body is
   * hidden from non-admins. Hard delete (organization admins): the row and its
   * edits go, and a tombstone event remains. Either way earlier log entries
   * lose what is no longer shown, so replaying the log cannot leak it.
   */
  async delete(viewer: Viewer, id: string, hard: boolean): Promise<DeleteResult> {
    const current = await this.get(viewer, id);
    const access = await channelAccess(this.prisma, viewer, current.channelId);
    if (hard) {
      if (!isAdmin(viewer)) throw forbidden('Only organization owners and admins delete messages permanently');
    } else if (current.senderId !== viewer.id && !isStaff(viewer) && !access.canManage) {
      throw forbidden('Only the author, staff or channel admins delete this message');
    } else if (access.channel.archivedAt) {
      // Archived channels are read-only; removing content for good stays possible for admins.
      throw forbidden('This channel is archived and read-only');
    } else if (current.deletedAt) {
      return { message: current, messageId: id, hard: false };
    }
    let filesRemoved = 0;
    try {
      const deleted = await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        let result: Message | null = null;
        await log.append(current.channelId, 'MESSAGE_DELETED', async () => {
          const message = await this.lockedMessage(tx, viewer, id);
          if (hard) {
            // The MESSAGE_DELETED entry is the tombstone of the message and its files.
            filesRemoved = await eraseMessages(tx, [message]);
          } else {
            // A concurrent delete committed first: undo this one's seq bump.
            if (message.deletedAt) throw new AlreadyDeleted();
            // Notifications quote the body: they lose the quote with it.
            await this.mentions.scrubNotifications(tx, message);
            result = await tx.message.update({ where: { id }, data: { deletedAt: new Date(), deletedById: viewer.id } });
            await scrubLoggedContent(tx, [message], ['body']);
          }
          // Who deleted what and when, never the body: the trail outlives the message and its purge.
          await audit(tx, {
            ...auditedBy(viewer),
            action: hard ? 'message.hardDelete' : 'message.delete',
            targetType: 'Message',
            targetId: id,
            data: { channelId: message.channelId, senderId: message.senderId, wasDeleted: message.deletedAt !== null },
          });
          return messageDeletedPayload(message, viewer.id, hard);
        });
        return { message: result, messageId: id, hard };
      });
      if (filesRemoved) this.attachments?.scheduleCleanup();
      return deleted;
    } catch (error) {
      if (!(error instanceof AlreadyDeleted)) throw error;
      return { message: await this.get(viewer, id), messageId: id, hard: false };
    }
  }

  /** Replies (deleted ones included) under each message, in one query for any number of messages; 0 for a message that is gone. */
  async replyCounts(messageIds: readonly string[]): Promise<number[]> {
    const rows = await this.prisma.message.groupBy({
      by: ['parentId'],
      where: { parentId: { in: [...messageIds] } },
      _count: { _all: true },
    });
    const byId = new Map(rows.map((r) => [r.parentId, r._count._all]));
    return messageIds.map((id) => byId.get(id) ?? 0);
  }

  /** Whether the viewer may see a soft-deleted message's body and history. */
  canSeeDeleted(viewer: Viewer): boolean {
    return maySeeDeletedContent(viewer);
  }

  /** For callers that found a message through a relation and must still check the body rule. */
  visibleBody(viewer: Viewer, message: Pick<Message, 'body' | 'deletedAt'>): string | null {
    return message.deletedAt && !this.canSeeDeleted(viewer) ? null : message.body;
  }
}

/** Rolls back a soft delete that lost the race to another one; the message is deleted either way. */
class AlreadyDeleted extends Error {}

/**
 * Blanks fields in the message snapshots of earlier log entries (MESSAGE_ADDED,
 * MESSAGE_EDITED). The entries themselves stay so the seq sequence has no holes.
 * Snapshots start at the message's own seq, which bounds the scan of the log.
 */
/**
 * A delete's log entry (its tombstone): the message's seq, sender and prior
 * state let live unread counts follow the delete without a query. An admin's
 * delete and an erasure's write the same entry.
 */
export function messageDeletedPayload(
  message: Pick<Message, 'id' | 'seq' | 'senderId' | 'deletedAt'>,
  deletedById: string,
  hard: boolean,
): ChannelEventPayloads['MESSAGE_DELETED'] {
  return {
    id: message.id,
    messageId: message.id,
    hard,
    deletedById,
    seq: message.seq,
    senderId: message.senderId,
    wasDeleted: message.deletedAt !== null,
  };
}

type Erased = Pick<Message, 'id' | 'channelId' | 'seq'>;

/**
 * Removes messages for good, in the caller's transaction: an admin's hard
 * delete (one message) and retention's purges (batches) alike. Their files
 * turn DELETED (no longer served or counted as theirs; the cleanup job frees
 * the blobs), notifications lose the quoted excerpt but keep the id, the log
 * entries that carry their content lose it (every seq stays, so replays have
 * no gap and bring nothing back), and mentions, links, reactions, pins and
 * edits go with the rows by their cascades. Resolves with how many files it
 * removed, so the caller schedules the cleanup after the commit.
 */
export async function eraseMessages(tx: Tx, messages: Erased[]): Promise<number> {
  if (messages.length === 0) return 0;
  const ids = messages.map((m) => m.id);
  const files = await tx.$executeRaw`
    UPDATE "Attachment" SET state = 'DELETED' WHERE "messageId" = ANY(${ids}::uuid[]) AND state = 'ATTACHED'`;
  await tx.$executeRaw`
    UPDATE "Notification" SET data = data || '{"excerpt": null}'::jsonb WHERE "messageId" = ANY(${ids}::uuid[])`;
  await scrubLoggedContent(tx, messages, ['body', 'customFields']);
  await tx.$executeRaw`DELETE FROM "Message" WHERE id = ANY(${ids}::uuid[])`;
  return files;
}

/**
 * Blanks `fields` in the log entries that carry these messages' content
 * (MESSAGE_ADDED and MESSAGE_EDITED snapshots): one range scan per channel,
 * from its oldest message's seq, where such entries can be.
 */
async function scrubLoggedContent(tx: Tx, messages: Erased[], fields: ('body' | 'customFields')[]) {
  const blanks = JSON.stringify(Object.fromEntries(fields.map((f) => [f, null])));
  await tx.$executeRaw`
    WITH erased AS (
      SELECT * FROM unnest(${messages.map((m) => m.id)}::uuid[], ${messages.map((m) => m.channelId)}::uuid[], ${messages.map((m) => m.seq)}::int[])
        AS e(id, "channelId", seq)
    ), span AS (
      SELECT "channelId", min(seq) AS "fromSeq", array_agg(id::text) AS ids FROM erased GROUP BY "channelId"
    )
    UPDATE "ChannelEvent" e SET payload = e.payload || ${blanks}::jsonb
    FROM span WHERE e."channelId" = span."channelId" AND e.seq >= span."fromSeq"
      AND e.payload ? 'body' AND e.payload->>'id' = ANY(span.ids)`;
}
