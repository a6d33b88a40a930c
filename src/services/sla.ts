import { Prisma, TicketPriority, type SupportTicket, type TicketStatus } from '../generated/prisma/client.ts';
import { isStaff } from './access.ts';
import type { SendRule } from './messages.ts';

/**
 * The SLA of support tickets. The maths (due times, the pause while a ticket
 * waits for its requester, breaches) are pure functions of a ticket's times,
 * its priority's targets and now; the services store and read the results.
 * The one write of its own is what stops the first clock (`firstResponseRule`).
 */

/** Every priority, in the order the database enum declares them. */
export const TICKET_PRIORITIES = Object.values(TicketPriority);

/** Minutes from a ticket's start to its first response and to its resolution. */
export interface SlaTarget {
  firstResponseMinutes: number;
  resolutionMinutes: number;
}

/** SLA targets where an organization set none. */
export const DEFAULT_SLA: Record<TicketPriority, SlaTarget> = {
  URGENT: { firstResponseMinutes: 60, resolutionMinutes: 4 * 60 },
  HIGH: { firstResponseMinutes: 4 * 60, resolutionMinutes: 24 * 60 },
  MEDIUM: { firstResponseMinutes: 8 * 60, resolutionMinutes: 72 * 60 },
  LOW: { firstResponseMinutes: 24 * 60, resolutionMinutes: 120 * 60 },
};

const MINUTE = 60_000;

/** A ticket's times, all the clocks are computed from. */
export type SlaTimes = Pick<
  SupportTicket,
  'firstResponseAt' | 'resolvedAt' | 'firstResponseDueAt' | 'resolutionDueAt' | 'pendingSince' | 'pausedMs'
>;

/** A ticket's SLA clocks as of now: due times run on while it is not waiting for its requester. */
export interface SlaState {
  firstResponseDueAt: Date;
  resolutionDueAt: Date;
  firstResponseBreached: boolean;
  resolutionBreached: boolean;
}

/** Every priority's targets: an organization's own where it set them, the defaults elsewhere. */
export function targetsFor(own: readonly (SlaTarget & { priority: TicketPriority })[]): (SlaTarget & { priority: TicketPriority })[] {
  return TICKET_PRIORITIES.map((priority) => {
    const set = own.find((t) => t.priority === priority) ?? DEFAULT_SLA[priority];
    return { priority, firstResponseMinutes: set.firstResponseMinutes, resolutionMinutes: set.resolutionMinutes };
  });
}

/**
 * The due times of a ticket started at `start` under `target`, moved on by the
 * time it already spent waiting for its requester (`pausedMs`): at opening,
 * and again when a new priority brings other targets.
 */
export function dueTimes(start: Date, target: SlaTarget, pausedMs = 0): Pick<SupportTicket, 'firstResponseDueAt' | 'resolutionDueAt'> {
  return {
    firstResponseDueAt: new Date(start.getTime() + target.firstResponseMinutes * MINUTE + pausedMs),
    resolutionDueAt: new Date(start.getTime() + target.resolutionMinutes * MINUTE + pausedMs),
  };
}

/**
 * The clocks now. A clock is breached when its event (first response,
 * resolution) came after its due time, or has not come and the due time is
 * past; a paused clock stopped at `pendingSince`, and its due time moves on
 * while the pause lasts. `breachedWhere` is the same rule in SQL.
 */
export function slaState(ticket: SlaTimes, now: Date): SlaState {
  const pausedFor = ticket.pendingSince ? now.getTime() - ticket.pendingSince.getTime() : 0;
  const clockAt = ticket.pendingSince ?? now;
  return {
    firstResponseDueAt: new Date(ticket.firstResponseDueAt.getTime() + pausedFor),
    resolutionDueAt: new Date(ticket.resolutionDueAt.getTime() + pausedFor),
    firstResponseBreached: (ticket.firstResponseAt ?? clockAt) > ticket.firstResponseDueAt,
    resolutionBreached: (ticket.resolvedAt ?? clockAt) > ticket.resolutionDueAt,
  };
}

/**
 * The pause, as the fields a status change writes: entering PENDING_USER
 * stops both clocks; leaving it moves both due times on by the time spent
 * waiting, and adds that time to `pausedMs`.
 */
export function pauseOnMove(
  ticket: Pick<SlaTimes, 'pendingSince' | 'pausedMs' | 'firstResponseDueAt' | 'resolutionDueAt'>,
  to: TicketStatus,
  now: Date,
): Partial<Pick<SupportTicket, 'pendingSince' | 'pausedMs' | 'firstResponseDueAt' | 'resolutionDueAt'>> {
  if (to === 'PENDING_USER' && !ticket.pendingSince) return { pendingSince: now };
  if (to !== 'PENDING_USER' && ticket.pendingSince) {
    const paused = now.getTime() - ticket.pendingSince.getTime();
    return {
      pendingSince: null,
      pausedMs: ticket.pausedMs + paused,
      firstResponseDueAt: new Date(ticket.firstResponseDueAt.getTime() + paused),
      resolutionDueAt: new Date(ticket.resolutionDueAt.getTime() + paused),
    };
  }
  return {};
}

/**
 * `slaState`'s breach rule as a filter: a ticket past a due time, because one
 * clock ran out before its event happened, or is out now (a paused clock
 * stopped at `pendingSince`).
 */
export function breachedWhere(now: Date, fields: Prisma.SupportTicketFieldRefs): Prisma.SupportTicketWhereInput {
  return {
    OR: [
      { firstResponseAt: null, pendingSince: null, firstResponseDueAt: { lt: now } },
      { firstResponseAt: null, pendingSince: { gt: fields.firstResponseDueAt } },
      { firstResponseAt: { gt: fields.firstResponseDueAt } },
      { resolvedAt: null, pendingSince: null, resolutionDueAt: { lt: now } },
      { resolvedAt: null, pendingSince: { gt: fields.resolutionDueAt } },
      { resolvedAt: { gt: fields.resolutionDueAt } },
    ],
  };
}

/**
 * The first message of an agent (staff other than the requester) in a
 * ticket's channel is its first response, which stops the first clock. A rule
 * of every send (`MessageService.addSendRule`), so it commits with the message
 * in the send's one statement; a sender who is not staff adds nothing to it.
 */
export function firstResponseRule(now: () => Date): SendRule {
  return (viewer, channelId) =>
    isStaff(viewer)
      ? Prisma.sql`
          UPDATE "SupportTicket" SET "firstResponseAt" = ${now()}
          WHERE "channelId" = ${channelId}::uuid AND "firstResponseAt" IS NULL AND "requesterId" <> ${viewer.id}::uuid
            AND EXISTS (SELECT 1 FROM msg)`
      : null;
}
