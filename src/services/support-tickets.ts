import type { Viewer } from './viewer.ts';
import type {
  Prisma,
  PrismaClient,
  SupportTicket,
  TicketCategory,
  TicketPriority,
  TicketStatus,
} from '../generated/prisma/client.ts';
import { ADMIN_ROLES, assertId, isAdmin, isStaff, readableSupportTicketWhere } from './access.ts';
import type { ChannelLog } from './channel-log.ts';
import type { Tx } from '../db/tx.ts';
import type { Clock } from './clock.ts';
import { badInput, conflict, forbidden, notFound } from './errors.ts';
import { idempotent } from './idempotency.ts';
import { joinItemChannel, openItemChannel, recordItemChange } from './item-log.ts';
import { messageSnapshot, type MessageService } from './messages.ts';
import type { NotificationDraft, NotificationService } from './notifications.ts';
import type { UserService } from './users.ts';
import { columns } from '../db/columns.ts';

export const TICKET_STATUSES: TicketStatus[] = ['OPEN', 'IN_PROGRESS', 'PENDING_USER', 'ESCALATED', 'RESOLVED', 'CLOSED'];
export const TICKET_PRIORITIES: TicketPriority[] = ['LOW', 'MEDIUM', 'HIGH', 'URGENT'];

/**
 * The status machine: OPEN → IN_PROGRESS → PENDING_USER ↔ IN_PROGRESS →
 * RESOLVED → CLOSED; ESCALATED from OPEN, IN_PROGRESS and PENDING_USER (and
 * back to IN_PROGRESS, or RESOLVED, once someone takes it on); a resolved
 * ticket reopens to IN_PROGRESS; CLOSED is final.
 */
const MOVES: Record<TicketStatus, TicketStatus[]> = {
  OPEN: ['IN_PROGRESS', 'ESCALATED'],
  IN_PROGRESS: ['PENDING_USER', 'RESOLVED', 'ESCALATED'],
  PENDING_USER: ['IN_PROGRESS', 'ESCALATED'],
  ESCALATED: ['IN_PROGRESS', 'RESOLVED'],
  RESOLVED: ['CLOSED', 'IN_PROGRESS'],
  CLOSED: [],
};

const from = (to: TicketStatus) => TICKET_STATUSES.filter((s) => MOVES[s].includes(to));

/** SLA targets in minutes (first response, resolution) where an organization set none. */
export const DEFAULT_SLA: Record<TicketPriority, { firstResponseMinutes: number; resolutionMinutes: number }> = {
  URGENT: { firstResponseMinutes: 60, resolutionMinutes: 4 * 60 },
  HIGH: { firstResponseMinutes: 4 * 60, resolutionMinutes: 24 * 60 },
  MEDIUM: { firstResponseMinutes: 8 * 60, resolutionMinutes: 72 * 60 },
  LOW: { firstResponseMinutes: 24 * 60, resolutionMinutes: 120 * 60 },
};

const MINUTE = 60_000;

export interface OpenTicketInput {
  subject: string;
  category: TicketCategory;
  priority: TicketPriority;
  message: string;
  idempotencyKey?: string | null;
}

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

/** A ticket's SLA clocks as of now: due times run on while it is not waiting for its requester. */
export interface SlaState {
  firstResponseDueAt: Date;
  resolutionDueAt: Date;
  firstResponseBreached: boolean;
  resolutionBreached: boolean;
}

type Query = { select?: Prisma.SupportTicketSelect; include?: Prisma.SupportTicketInclude };

/**
 * The support desk. Requesters see and act on their own tickets (reply in its
 * channel, rate, reopen, close); agents (OWNER, ADMIN, STAFF) see the
 * organization's queue and alone assign, escalate, resolve and change priority
 * or category. Escalations notify the organization's admins and nobody else.
 */
export class SupportTicketService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
    private readonly notifications: NotificationService,
    private readonly messages: MessageService,
    private readonly clock: Clock,
    private readonly users: UserService,
  ) {}

  visibleWhere(viewer: Viewer): Prisma.SupportTicketWhereInput {
    return readableSupportTicketWhere(viewer);
  }

  async get(viewer: Viewer, id: string, query: Query = {}): Promise<SupportTicket> {
    assertId(id, 'Support ticket');
    const ticket = await this.prisma.supportTicket.findFirst({ ...query, where: { id, ...this.visibleWhere(viewer) } });
    if (!ticket) throw notFound('Support ticket');
    return ticket as SupportTicket;
  }

  async listWhere(viewer: Viewer, filter: TicketFilter): Promise<Prisma.SupportTicketWhereInput> {
    // A user the viewer cannot see is NOT_FOUND, as user(id) says.
    const named = [filter.assigneeId, filter.requesterId].filter((id): id is string => !!id);
    if (named.length) await this.users.visibleIds(viewer, named);
    const and: Prisma.SupportTicketWhereInput[] = [this.visibleWhere(viewer)];
    if (filter.status) and.push({ status: filter.status });
    if (filter.priority) and.push({ priority: filter.priority });
    if (filter.category) and.push({ category: filter.category });
    if (filter.assigneeId) and.push({ assigneeId: filter.assigneeId });
    if (filter.unassigned != null) and.push({ assigneeId: filter.unassigned ? null : { not: null } });
    if (filter.requesterId) and.push({ requesterId: filter.requesterId });
    if (filter.breached != null) and.push(filter.breached ? this.breachedWhere() : { NOT: this.breachedWhere() });
    return { AND: and };
  }

  orderBy(order: TicketOrder): Prisma.SupportTicketOrderByWithRelationInput[] {
    switch (order) {
      case 'OLDEST':
        return [{ createdAt: 'asc' }, { id: 'asc' }];
      case 'PRIORITY':
        // The enum's order is LOW < MEDIUM < HIGH < URGENT.
        return [{ priority: 'desc' }, { createdAt: 'asc' }, { id: 'asc' }];
      case 'RESOLUTION_DUE':
        return [{ resolutionDueAt: 'asc' }, { id: 'asc' }];
      default:
        return [{ createdAt: 'desc' }, { id: 'desc' }];
    }
  }

  /**
   * A ticket past a due time: one clock ran out before its event happened, or
   * is out now (a paused clock stopped at `pendingSince`).
   */
  private breachedWhere(): Prisma.SupportTicketWhereInput {
    const fields = this.prisma.supportTicket.fields;
    const now = this.clock.now();
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

  /** The ticket's clocks now (see `breachedWhere` for the same rule in SQL). */
  sla(ticket: SupportTicket): SlaState {
    const now = this.clock.now();
    const pausedFor = ticket.pendingSince ? now.getTime() - ticket.pendingSince.getTime() : 0;
    const clockAt = ticket.pendingSince ?? now;
    return {
      firstResponseDueAt: new Date(ticket.firstResponseDueAt.getTime() + pausedFor),
      resolutionDueAt: new Date(ticket.resolutionDueAt.getTime() + pausedFor),
      firstResponseBreached: (ticket.firstResponseAt ?? clockAt) > ticket.firstResponseDueAt,
      resolutionBreached: (ticket.resolvedAt ?? clockAt) > ticket.resolutionDueAt,
    };
  }

  async counts(viewer: Viewer): Promise<{ status: TicketStatus; count: number }[]> {
    const rows = await this.prisma.supportTicket.groupBy({ by: ['status'], where: this.visibleWhere(viewer), _count: true });
    return TICKET_STATUSES.map((status) => ({ status, count: rows.find((r) => r.status === status)?._count ?? 0 }));
  }

  /** The organization's SLA targets per priority, defaults where none was set. */
  async slaTargets(organizationId: string): Promise<{ priority: TicketPriority; firstResponseMinutes: number; resolutionMinutes: number }[]> {
    const rows = await this.prisma.slaTarget.findMany({ where: { organizationId } });
    return TICKET_PRIORITIES.map((priority) => ({ priority, ...(rows.find((r) => r.priority === priority) ?? DEFAULT_SLA[priority]) }));
  }

  /** Admins set a priority's targets; they apply to tickets opened from then on. */
  async setSlaTarget(viewer: Viewer, priority: TicketPriority, firstResponseMinutes: number, resolutionMinutes: number) {
    if (!isAdmin(viewer)) throw forbidden('Only organization admins set SLA targets');
    if (firstResponseMinutes > resolutionMinutes) throw badInput('firstResponseMinutes', 'The first response cannot be due after the resolution');
    const data = { firstResponseMinutes, resolutionMinutes };
    await this.prisma.slaTarget.upsert({
      where: { organizationId_priority: { organizationId: viewer.organizationId, priority } },
      create: { organizationId: viewer.organizationId, priority, ...data },
      update: data,
    });
    return { priority, ...data };
  }

  /** Opens a ticket: its SUPPORT channel with the requester in it, the first message, and the SLA clocks. */
  async open(viewer: Viewer, input: OpenTicketInput): Promise<SupportTicket> {
    const body = this.messages.cleanBody(input.message);
    const now = this.clock.now();
    const target = (await this.slaTargets(viewer.organizationId)).find((t) => t.priority === input.priority)!;
    return idempotent(
      this.prisma,
      viewer,
      input.idempotencyKey,
      'openSupportTicket',
      (remember) =>
        this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
          const [counter] = await tx.$queryRaw<{ lastTicketNumber: number }[]>`
            UPDATE "Organization" SET "lastTicketNumber" = "lastTicketNumber" + 1 WHERE id = ${viewer.organizationId}::uuid RETURNING "lastTicketNumber"`;
          const number = counter!.lastTicketNumber;
          const channel = await openItemChannel(tx, log, viewer, { kind: 'SUPPORT', name: `Ticket ${number}`, topic: input.subject });
          await log.append(channel.id, 'MESSAGE_ADDED', async (seq: number) =>
            messageSnapshot(await tx.message.create({ data: { organizationId: viewer.organizationId, channelId: channel.id, seq, senderId: viewer.id, body } })),
          );
          const ticket = await tx.supportTicket.create({
            data: {
              organizationId: viewer.organizationId,
              number,
              subject: input.subject,
              category: input.category,
              priority: input.priority,
              requesterId: viewer.id,
              channelId: channel.id,
              firstResponseDueAt: new Date(now.getTime() + target.firstResponseMinutes * MINUTE),
              resolutionDueAt: new Date(now.getTime() + target.resolutionMinutes * MINUTE),
              createdAt: now,
            },
          });
          await recordItemChange(tx, log, viewer, { item: 'SUPPORT_TICKET', itemId: ticket.id, channelId: channel.id, action: 'OPENED', from: null, to: 'OPEN' });
          await remember(tx, ticket.id);
          return ticket;
        }),
      (id) => this.prisma.supportTicket.findUniqueOrThrow({ where: { id } }),
    );
  }

  /** Agents move a ticket along the machine (IN_PROGRESS, PENDING_USER); named changes have their own methods. */
  setStatus(viewer: Viewer, id: string, status: 'IN_PROGRESS' | 'PENDING_USER', key?: string | null) {
    // A resolved ticket comes back through reopen, which also clears its resolution time.
    const allowedFrom = from(status).filter((s) => s !== 'RESOLVED');
    return this.change(viewer, id, key, 'setSupportTicketStatus', { actor: 'agent', to: status, allowedFrom, action: status });
  }

  /**
   * Assigns the ticket to an agent (the viewer when `assigneeId` is null), who
   * joins its channel; an OPEN ticket is then IN_PROGRESS.
   */
  async assign(viewer: Viewer, id: string, assigneeId: string | null, key?: string | null): Promise<SupportTicket> {
    const assignee = assigneeId ? await this.agent(viewer, assigneeId) : { id: viewer.id, displayName: viewer.displayName };
    return this.change(viewer, id, key, 'assignSupportTicket', {
      actor: 'agent',
      action: 'ASSIGNED',
      to: (current) => (current === 'OPEN' ? 'IN_PROGRESS' : current),
      allowedFrom: ['OPEN', 'IN_PROGRESS', 'PENDING_USER', 'ESCALATED'],
      data: () => ({ assigneeId: assignee.id }),
      detail: { assigneeId: assignee.id, assigneeName: assignee.displayName },
      joins: [assignee.id],
      notify: (ticket) => [{ userId: assignee.id, type: 'SUPPORT_TICKET_ASSIGNED', ticketId: ticket.id, data: { number: ticket.number, subject: ticket.subject } }],
    });
  }

  /** Escalates within the organization: its admins are told. */
  escalate(viewer: Viewer, id: string, reason: string, key?: string | null): Promise<SupportTicket> {
    return this.change(viewer, id, key, 'escalateSupportTicket', {
      actor: 'agent',
      to: 'ESCALATED',
      action: 'ESCALATED',
      reason,
      data: (now) => ({ escalatedAt: now, escalationReason: reason }),
      notify: async (ticket, tx) => {
        const admins = await tx.user.findMany({
          where: { organizationId: viewer.organizationId, role: { in: [...ADMIN_ROLES] }, deactivatedAt: null },
          select: { id: true },
        });
        return admins.map((a) => ({
          userId: a.id,
          type: 'SUPPORT_TICKET_ESCALATED' as const,
          ticketId: ticket.id,
          data: { number: ticket.number, subject: ticket.subject, reason },
        }));
      },
    });
  }

  resolve(viewer: Viewer, id: string, resolution: string, key?: string | null): Promise<SupportTicket> {
    return this.change(viewer, id, key, 'resolveSupportTicket', {
      actor: 'agent',
      to: 'RESOLVED',
      action: 'RESOLVED',
      reason: resolution,
      data: (now) => ({ resolution, resolvedAt: now }),
    });
  }

  close(viewer: Viewer, id: string, key?: string | null): Promise<SupportTicket> {
    return this.change(viewer, id, key, 'closeSupportTicket', { actor: 'either', to: 'CLOSED', action: 'CLOSED', data: (now) => ({ closedAt: now }) });
  }

  /** A resolved ticket goes back to IN_PROGRESS; the resolution clock, never stopped by the resolution, keeps its due time. */
  reopen(viewer: Viewer, id: string, reason: string | null, key?: string | null): Promise<SupportTicket> {
    return this.change(viewer, id, key, 'reopenSupportTicket', {
      actor: 'either',
      to: 'IN_PROGRESS',
      allowedFrom: ['RESOLVED'],
      action: 'REOPENED',
      reason,
      data: () => ({ resolvedAt: null }),
    });
  }

  /** A new priority moves both due times to what its targets give from the ticket's start, pauses included. */
  async changePriority(viewer: Viewer, id: string, priority: TicketPriority, key?: string | null): Promise<SupportTicket> {
    const target = (await this.slaTargets(viewer.organizationId)).find((t) => t.priority === priority)!;
    return this.change(viewer, id, key, 'changeSupportTicketPriority', {
      actor: 'agent',
      to: (current) => current,
      allowedFrom: TICKET_STATUSES.filter((s) => s !== 'CLOSED'),
      action: 'PRIORITY_CHANGED',
      data: (_now, ticket) => ({
        priority,
        firstResponseDueAt: new Date(ticket.createdAt.getTime() + target.firstResponseMinutes * MINUTE + ticket.pausedMs),
        resolutionDueAt: new Date(ticket.createdAt.getTime() + target.resolutionMinutes * MINUTE + ticket.pausedMs),
      }),
      detail: (ticket) => ({ fromPriority: ticket.priority, toPriority: priority }),
    });
  }

  changeCategory(viewer: Viewer, id: string, category: TicketCategory, key?: string | null): Promise<SupportTicket> {
    return this.change(viewer, id, key, 'changeSupportTicketCategory', {
      actor: 'agent',
      to: (current) => current,
      allowedFrom: TICKET_STATUSES.filter((s) => s !== 'CLOSED'),
      action: 'CATEGORY_CHANGED',
      data: () => ({ category }),
      detail: (ticket) => ({ fromCategory: ticket.category, toCategory: category }),
    });
  }

  /** The requester rates a resolved (or closed) ticket, 1 to 5; rating again replaces it. */
  rate(viewer: Viewer, id: string, rating: number, comment: string | null, key?: string | null): Promise<SupportTicket> {
    return this.change(viewer, id, key, 'rateSupportTicket', {
      actor: 'requester',
      to: (current) => current,
      allowedFrom: ['RESOLVED', 'CLOSED'],
      action: 'RATED',
      data: () => ({ rating, ratingComment: comment }),
      detail: { rating },
    });
  }

  /**
   * One change of a ticket, in one transaction: the row is locked and the
   * move checked against the machine (CONFLICT naming the current status),
   * the SLA pause accounted for when the ticket leaves or enters
   * PENDING_USER, then the change is recorded (audit, system event, updates)
   * and notified (the requester on every status change).
   */
  private async change(
    viewer: Viewer,
    id: string,
    key: string | null | undefined,
    operation: string,
    spec: {
      actor: 'agent' | 'requester' | 'either';
      to: TicketStatus | ((current: TicketStatus) => TicketStatus);
      /** Statuses the change applies from; by default those the machine allows into `to`. */
      allowedFrom?: TicketStatus[];
      action: string;
      reason?: string | null;
      data?: (now: Date, ticket: SupportTicket) => Prisma.SupportTicketUncheckedUpdateInput;
      detail?: Record<string, unknown> | ((ticket: SupportTicket) => Record<string, unknown>);
      joins?: string[];
      notify?: (ticket: SupportTicket, tx: Tx) => NotificationDraft[] | Promise<NotificationDraft[]>;
    },
  ): Promise<SupportTicket> {
    const current = await this.get(viewer, id);
    const agent = isStaff(viewer);
    const requester = current.requesterId === viewer.id;
    if (spec.actor === 'agent' && !agent) throw forbidden('Only support agents do this');
    if (spec.actor === 'requester' && !requester) throw forbidden('Only the requester does this');
    return idempotent(
      this.prisma,
      viewer,
      key,
      operation,
      (remember) =>
        this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
          const [locked] = await tx.$queryRaw<SupportTicket[]>`SELECT ${columns('SupportTicket')} FROM "SupportTicket" WHERE id = ${current.id}::uuid FOR UPDATE`;
          const ticket = locked!;
          const to = typeof spec.to === 'function' ? spec.to(ticket.status) : spec.to;
          const allowed = spec.allowedFrom ?? from(to);
          if (!allowed.includes(ticket.status)) {
            throw conflict(`The ticket is ${ticket.status}; it cannot become ${to}`, { status: ticket.status });
          }
          const now = this.clock.now();
          const updated = await tx.supportTicket.update({
            where: { id: ticket.id },
            data: { status: to, ...clocks(ticket, to, now), ...spec.data?.(now, ticket) },
          });
          for (const userId of [...(spec.joins ?? []), ...(agent && !requester ? [viewer.id] : [])]) await joinItemChannel(tx, log, userId, ticket.channelId);
          const detail = typeof spec.detail === 'function' ? spec.detail(ticket) : spec.detail;
          await recordItemChange(tx, log, viewer, {
            item: 'SUPPORT_TICKET',
            itemId: ticket.id,
            channelId: ticket.channelId,
            action: spec.action,
            from: ticket.status,
            to,
            reason: spec.reason,
            detail,
          });
          const drafts: NotificationDraft[] = [];
          if (to !== ticket.status) {
            drafts.push({
              userId: ticket.requesterId,
              type: 'SUPPORT_TICKET_STATUS',
              ticketId: ticket.id,
              data: { number: ticket.number, subject: ticket.subject, from: ticket.status, to, reason: spec.reason ?? null, actorName: viewer.displayName },
            });
          }
          drafts.push(...((await spec.notify?.(updated, tx)) ?? []));
          await this.notifications.notify(tx, log, viewer, drafts);
          await remember(tx, ticket.id);
          return updated;
        }),
      (ticketId) => this.prisma.supportTicket.findUniqueOrThrow({ where: { id: ticketId } }),
    );
  }

  /** An active agent of the viewer's organization. */
  private async agent(viewer: Viewer, userId: string): Promise<{ id: string; displayName: string }> {
    assertId(userId, 'User');
    const user = await this.prisma.user.findFirst({
      where: { id: userId, organizationId: viewer.organizationId },
      select: { id: true, displayName: true, role: true, deactivatedAt: true },
    });
    if (!user) throw notFound('User');
    if (user.deactivatedAt || !isStaff(user)) {
      throw badInput('assigneeId', 'Tickets are assigned to active agents (staff, admins, owners)');
    }
    return user;
  }
}

/**
 * The SLA pause: entering PENDING_USER stops both clocks; leaving it moves
 * both due times on by the time spent waiting.
 */
function clocks(ticket: SupportTicket, to: TicketStatus, now: Date): Prisma.SupportTicketUncheckedUpdateInput {
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
