import type { Viewer } from './viewer.ts';
import type { Channel, ChannelKind } from '../generated/prisma/client.ts';
import { audit } from './audit.ts';
import type { ItemAction, ItemKind, ItemStatus } from '../bus/events.ts';
import type { UserSignal } from '../bus/pubsub.ts';
import type { LogWriter } from './channel-log.ts';
import type { Tx } from '../db/tx.ts';

export type { ItemKind };

/** One change to a request or ticket, as its audit entry and its channel's system event record it. */
export interface ItemChange<I extends ItemKind> {
  item: I;
  itemId: string;
  /** The item's conversation, whose log gets the system event. */
  channelId: string;
  /** What happened: CREATED, APPROVED, ASSIGNED, PRIORITY_CHANGED, ... */
  action: ItemAction<I>;
  /** The status before and after (equal when the status did not change). */
  from: ItemStatus<I> | null;
  to: ItemStatus<I>;
  reason?: string | null;
  /** Whatever else the change is about, e.g. `{ assigneeId, assigneeName }`. */
  detail?: Record<string, unknown>;
}

/** The update each member's own stream gets, by item kind. */
const SIGNALS: { [I in ItemKind]: (itemId: string, status: ItemStatus<I>) => UserSignal } = {
  CLIENT_REQUEST: (requestId, status) => ({ type: 'CLIENT_REQUEST_UPDATED', requestId, status }),
  SUPPORT_TICKET: (ticketId, status) => ({ type: 'SUPPORT_TICKET_UPDATED', ticketId, status }),
};

const AUDIT_TARGET: Record<ItemKind, string> = { CLIENT_REQUEST: 'ClientRequest', SUPPORT_TICKET: 'SupportTicket' };

/**
 * Records a change in the transaction that makes it: the audit entry (actor,
 * from, to, reason, time), a SYSTEM_EVENT in the item's channel log (so the
 * conversation shows "approved by …" live and on replay) and, after the
 * commit, an update on the own stream of everyone in that conversation.
 */
export async function recordItemChange<I extends ItemKind>(tx: Tx, log: LogWriter, actor: Viewer, change: ItemChange<I>): Promise<void> {
  const { item, itemId, channelId, action, from, to, reason = null, detail = {} } = change;
  await audit(tx, {
    organizationId: actor.organizationId,
    actorId: actor.id,
    action: `${AUDIT_TARGET[item]}.${action}`,
    targetType: AUDIT_TARGET[item],
    targetId: itemId,
    data: { from, to, reason, ...detail },
  });
  await log.append(channelId, 'SYSTEM_EVENT', { item, itemId, action, from, to, reason, actorName: actor.displayName, ...detail });
  const members = await tx.channelMember.findMany({ where: { channelId }, select: { userId: true } });
  const signal = SIGNALS[item](itemId, to);
  for (const { userId } of members) log.signal(userId, signal);
}

/** A request's or ticket's own conversation, with the viewer (who filed it) in it. */
export async function openItemChannel(
  tx: Tx,
  log: LogWriter,
  viewer: Viewer,
  channel: { kind: ChannelKind; name: string; projectId?: string; topic?: string },
): Promise<Channel> {
  const created = await tx.channel.create({ data: { organizationId: viewer.organizationId, ...channel } });
  await joinItemChannel(tx, log, viewer.id, created.id);
  return created;
}

/** Puts someone who takes part (a decider, an assignee) into the conversation, once. */
export async function joinItemChannel(tx: Tx, log: LogWriter, userId: string, channelId: string): Promise<void> {
  const { count } = await tx.channelMember.createMany({ data: [{ channelId, userId, role: 'MEMBER' }], skipDuplicates: true });
  if (count) await log.append(channelId, 'MEMBER_ADDED', { userIds: [userId] });
}
