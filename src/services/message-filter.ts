import type { Prisma } from '../generated/prisma/client.ts';
import { isId } from './access.ts';
import { checkedFilter } from './custom-fields.ts';

/** `Channel.messages(filter)`: every condition given must hold. */
export interface MessageFilter {
  /** A user id; one that is no user of the channel (another organization's, or none) matches no message. */
  senderId?: string | null;
  /** Sent at or after this instant. */
  after?: Date | null;
  /** Sent before this instant. */
  before?: Date | null;
  /** true: messages with at least one `@type#id` link; false: those without. */
  hasLinks?: boolean | null;
  /**
   * Messages whose customFields hold each top-level key of this object with
   * that value (a list value: a stored list holding all of its items). Within
   * one channel's history, by Prisma's JSON path filters: Prisma cannot emit
   * `@>`, and this where is built without the channel (a relation's query),
   * so the GIN index is not used; the channel's (channelId, seq) index bounds the scan.
   */
  customFields?: unknown;
}

/** The rows of a channel's history `filter` keeps, for the history's own query (keyset by seq stays as it is). */
export function messageFilterWhere(filter: MessageFilter | null | undefined): Prisma.MessageWhereInput {
  if (!filter) return {};
  const where: Prisma.MessageWhereInput = {};
  if (filter.senderId != null) where.senderId = isId(filter.senderId) ? filter.senderId : { in: [] };
  if (filter.after || filter.before) {
    where.createdAt = { ...(filter.after ? { gte: filter.after } : {}), ...(filter.before ? { lt: filter.before } : {}) };
  }
  if (filter.hasLinks != null) where.links = filter.hasLinks ? { some: {} } : { none: {} };
  if (filter.customFields != null) {
    where.AND = Object.entries(checkedFilter(filter.customFields)).map(([key, value]): Prisma.MessageWhereInput => {
      const json = value as Prisma.InputJsonValue;
      return { customFields: Array.isArray(value) ? { path: [key], array_contains: json } : { path: [key], equals: json } };
    });
  }
  return where;
}
