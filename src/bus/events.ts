import type {
  ChannelEventType as LoggedEventType,
  ChannelMemberRole,
  ChannelVisibility,
  ClientRequestStatus,
  Message,
  TicketStatus,
} from '../generated/prisma/client.ts';

/**
 * A message as the channel log and live subscribers carry it (the full
 * payload: fan-out needs no query). Dates are ISO strings; relations are ids.
 * A hard delete blanks `body` and `customFields` in the entries already
 * logged, so a replay cannot show what is gone.
 */
export type MessageSnapshot = Omit<Message, 'body' | 'editedAt' | 'deletedAt' | 'createdAt' | 'deletedById' | 'organizationId'> & {
  body: string | null;
  editedAt: string | null;
  deletedAt: string | null;
  createdAt: string;
};

/** Why a member left a channel's log. */
export type MemberRemovalReason = 'REMOVED' | 'LEFT' | 'PROJECT_ACCESS_REVOKED';

/** Each kind of item with a conversation: its statuses and the actions its changes record. */
export interface ItemKinds {
  CLIENT_REQUEST: {
    status: ClientRequestStatus;
    action: 'CREATED' | 'EDITED' | 'WITHDRAWN' | 'APPROVED' | 'REJECTED' | 'CONVERTED' | 'FIELDS_CHANGED';
  };
  SUPPORT_TICKET: {
    status: TicketStatus;
    action:
      | 'OPENED'
      | 'IN_PROGRESS'
      | 'PENDING_USER'
      | 'ASSIGNED'
      | 'ESCALATED'
      | 'RESOLVED'
      | 'CLOSED'
      | 'REOPENED'
      | 'PRIORITY_CHANGED'
      | 'CATEGORY_CHANGED'
      | 'RATED'
      | 'FIELDS_CHANGED';
  };
}

export type ItemKind = keyof ItemKinds;
export type ItemAction<I extends ItemKind = ItemKind> = ItemKinds[I]['action'];
export type ItemStatus<I extends ItemKind = ItemKind> = ItemKinds[I]['status'];

/** A request's or ticket's change, as its conversation's log records it. */
export interface SystemEventPayload {
  item: ItemKind;
  itemId: string;
  action: ItemAction;
  from: ItemStatus | null;
  to: ItemStatus;
  reason: string | null;
  actorName: string;
  /** What else the change is about, e.g. `assigneeName`, `fromPriority`. */
  [detail: string]: unknown;
}

/**
 * What each type of channel log entry carries in its `payload`: the one
 * definition the log writer, pub/sub, the hub, the live streams and the
 * schema share, so no reader casts a payload. Every type the database knows
 * has an entry; a type no code writes yet is `never`.
 */
export interface ChannelEventPayloads {
  MESSAGE_ADDED: MessageSnapshot;
  MESSAGE_EDITED: MessageSnapshot;
  MESSAGE_DELETED: {
    id: string;
    messageId: string;
    hard: boolean;
    deletedById: string;
    /** The message's seq, sender and prior state let live unread counts follow the delete without a query. */
    seq: number;
    senderId: string;
    wasDeleted: boolean;
  };
  /** One user added or removed one emoji on a message; `count` is that emoji's count after the change. */
  REACTIONS_CHANGED: ReactionChange;
  MEMBER_ADDED: { userIds: string[]; role?: ChannelMemberRole };
  MEMBER_REMOVED: { userId: string; reason: MemberRemovalReason };
  /** What changed about the channel: only the keys present changed. */
  CHANNEL_UPDATED: ChannelChange;
  /** A member's read marker moved (forward by markChannelRead, back by markChannelUnread). */
  READ_RECEIPT: {
    userId: string;
    lastReadSeq: number;
    /** The markers before the move (absent in receipts logged before issue 11); reading implies delivery. */
    previousReadSeq?: number;
    previousDeliveredSeq?: number;
  };
  SYSTEM_EVENT: SystemEventPayload;
  MESSAGE_PINNED: { messageId: string; messageSeq: number; pinnedById: string };
  MESSAGE_UNPINNED: { messageId: string; messageSeq: number };
  /** A member's clients received the channel up to `lastDeliveredSeq`. */
  DELIVERY_RECEIPT: { userId: string; lastDeliveredSeq: number; previousDeliveredSeq: number };
  /** Files added to the channel's client request (a message's files come with its MESSAGE_ADDED). */
  ATTACHMENT_ADDED: { clientRequestId: string; attachmentIds: string[] };
  /**
   * A file taken off its message or request, and deleted from storage: the
   * tombstone. `messageSeq` finds the message in a client's history.
   */
  ATTACHMENT_REMOVED: {
    attachmentId: string;
    messageId: string | null;
    messageSeq: number | null;
    clientRequestId: string | null;
    removedById: string;
  };
}

export interface ReactionChange {
  messageId: string;
  /** The message's seq, so a client finds it in its history without a lookup. */
  messageSeq: number;
  emoji: string;
  userId: string;
  added: boolean;
  count: number;
}

export interface ChannelChange {
  archived?: boolean;
  name?: string | null;
  topic?: string | null;
  description?: string | null;
  customFields?: unknown;
  visibility?: ChannelVisibility;
  membersMayPin?: boolean;
  slowModeSeconds?: number;
}

export type ChannelEventType = keyof ChannelEventPayloads;

// The database's enum and this map name the same types.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const sameTypes: Same<ChannelEventType, LoggedEventType> = true;
void sameTypes;

/** The types some code writes: a `never` payload marks one still to come. */
type WrittenType = { [K in ChannelEventType]: [ChannelEventPayloads[K]] extends [never] ? never : K }[ChannelEventType];

/** A committed channel log entry, as live subscribers receive it; `type` tells its payload. */
export type ChannelEvent = {
  [K in WrittenType]: {
    channelId: string;
    seq: number;
    type: K;
    actorId: string | null;
    createdAt: string;
    payload: ChannelEventPayloads[K];
  };
}[WrittenType];

export type ChannelEventOf<K extends WrittenType> = Extract<ChannelEvent, { type: K }>;

/**
 * A row of the channel log in the shape live subscribers receive. The one
 * place a stored payload becomes typed: the log writer is the only writer of
 * `payload`, and it takes `ChannelEventPayloads[type]`.
 */
export function eventFromRow(row: {
  channelId: string;
  seq: number;
  type: LoggedEventType;
  actorId: string | null;
  createdAt: Date;
  payload: unknown;
}): ChannelEvent {
  return {
    channelId: row.channelId,
    seq: row.seq,
    type: row.type,
    actorId: row.actorId,
    createdAt: row.createdAt.toISOString(),
    payload: row.payload,
  } as ChannelEvent;
}
