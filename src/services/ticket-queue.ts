import type { Prisma, TicketCategory, TicketPriority, TicketStatus } from '../generated/prisma/client.ts';
import { breachedWhere } from './sla.ts';

/**
 * The agents' queue of support tickets: what a list may be narrowed by and
 * ordered on. Pure query building; the service adds who may see what and
 * checks the users a filter names.
 */

export interface TicketFilter {
  status?: TicketStatus | null;
  priority?: TicketPriority | null;
  category?: TicketCategory | null;
  assigneeId?: string | null;
  unassigned?: boolean | null;
  breached?: boolean | null;
  requesterId?: string | null;
}

export type TicketOrder = 'NEWEST' | 'OLDEST' | 'PRIORITY' | 'RESOLUTION_DUE';

export const TICKET_ORDERS: Record<TicketOrder, Prisma.SupportTicketOrderByWithRelationInput[]> = {
  NEWEST: [{ createdAt: 'desc' }, { id: 'desc' }],
  OLDEST: [{ createdAt: 'asc' }, { id: 'asc' }],
  // The enum's order is LOW < MEDIUM < HIGH < URGENT.
  PRIORITY: [{ priority: 'desc' }, { createdAt: 'asc' }, { id: 'asc' }],
  RESOLUTION_DUE: [{ resolutionDueAt: 'asc' }, { id: 'asc' }],
};

/** The users a filter names. */
export function namedUsers(filter: TicketFilter): string[] {
  return [filter.assigneeId, filter.requesterId].filter((id): id is string => !!id);
}

/** The filter's conditions, breaches as of `now`. */
export function filterWhere(filter: TicketFilter, now: Date, fields: Prisma.SupportTicketFieldRefs): Prisma.SupportTicketWhereInput[] {
  const and: Prisma.SupportTicketWhereInput[] = [];
  if (filter.status) and.push({ status: filter.status });
  if (filter.priority) and.push({ priority: filter.priority });
  if (filter.category) and.push({ category: filter.category });
  if (filter.assigneeId) and.push({ assigneeId: filter.assigneeId });
  if (filter.unassigned != null) and.push({ assigneeId: filter.unassigned ? null : { not: null } });
  if (filter.requesterId) and.push({ requesterId: filter.requesterId });
  if (filter.breached != null) {
    const breached = breachedWhere(now, fields);
    and.push(filter.breached ? breached : { NOT: breached });
  }
  return and;
}
