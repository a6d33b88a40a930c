import type { ItemAction } from '../bus/events.ts';
import type { Viewer } from './viewer.ts';
import {
  TicketStatus,
  Prisma,
  type PrismaClient,
  type SupportTicket,
  type TicketCategory,
  type TicketPriority,
} from '../generated/prisma/client.ts';
import { ADMIN_ROLES, assertId, isAdmin, isStaff, readableSupportTicketWhere } from './access.ts';
import type { ChannelLog } from './channel-log.ts';
import type { Clock } from './clock.ts';
import { badInput, forbidden, notFound } from './errors.ts';
import { openItemChannel } from './item-log.ts';
import { messageSnapshot } from './message-content.ts';
import type { MessageService } from './messages.ts';
import type { NotificationService } from './notifications.ts';
import { dueTimes, pauseOnMove, slaState, targetsFor, type SlaState, type SlaTarget } from './sla.ts';
import { filterWhere, namedUsers, TICKET_ORDERS, type TicketFilter, type TicketOrder } from './ticket-queue.ts';
import type { UserService } from './users.ts';
import { Workflow, type ItemRules, type Move } from './workflow.ts';
import { changedKeys, idsWithCustomFields, type CustomFieldCheck } from './custom-fields.ts';

/** Every status, in the order the database enum declares them. */
export const TICKET_STATUSES = Object.values(TicketStatus);

/**
 * The status machine: OPEN → IN_PROGRESS → PENDING_USER ↔ IN_PROGRESS →
 * RESOLVED → CLOSED; ESCALATED from OPEN, IN_PROGRESS and PENDING_USER (and
 * back to IN_PROGRESS, or RESOLVED, once someone takes it on); a resolved
 * ticket reopens to IN_PROGRESS; CLOSED is final.
 */
export const TICKET_MACHINE: Record<TicketStatus, TicketStatus[]> = {
  OPEN: ['IN_PROGRESS', 'ESCALATED'],
  IN_PROGRESS: ['PENDING_USER', 'RESOLVED', 'ESCALATED'],
  PENDING_USER: ['IN_PROGRESS', 'ESCALATED'],
  ESCALATED: ['IN_PROGRESS', 'RESOLVED'],
  RESOLVED: ['CLOSED', 'IN_PROGRESS'],
  CLOSED: [],
};

type Who = 'agent' | 'requester' | 'either';
const unchanged = (status: TicketStatus) => status;
const notClosed = TICKET_STATUSES.filter((s) => s !== 'CLOSED');

/**
 * The changes of a ticket. Agents move it along the machine, assign,
 * escalate, resolve and change priority or category; its requester rates it;
 * either closes or reopens a resolved one. Without `from`, a move starts
 * wherever the machine leads into its status.
 */
export const TICKET_MOVES = {
  // Not from RESOLVED: a resolved ticket comes back through reopen, which also clears its resolution time.
  IN_PROGRESS: {
    operation: 'setSupportTicketStatus',
    action: 'IN_PROGRESS',
    who: 'agent',
    to: 'IN_PROGRESS',
    from: ['OPEN', 'PENDING_USER', 'ESCALATED'],
  },
  PENDING_USER: { operation: 'setSupportTicketStatus', action: 'PENDING_USER', who: 'agent', to: 'PENDING_USER' },
  // Taking an OPEN ticket on starts it.
  assign: {
    operation: 'assignSupportTicket',
    action: 'ASSIGNED',
    who: 'agent',
    to: (status: TicketStatus) => (status === 'OPEN' ? 'IN_PROGRESS' : status),
    from: ['OPEN', 'IN_PROGRESS', 'PENDING_USER', 'ESCALATED'],
  },
  escalate: { operation: 'escalateSupportTicket', action: 'ESCALATED', who: 'agent', to: 'ESCALATED' },
  resolve: { operation: 'resolveSupportTicket', action: 'RESOLVED', who: 'agent', to: 'RESOLVED' },
  close: { operation: 'closeSupportTicket', action: 'CLOSED', who: 'either', to: 'CLOSED' },
  reopen: { operation: 'reopenSupportTicket', action: 'REOPENED', who: 'either', to: 'IN_PROGRESS', from: ['RESOLVED'] },
  priority: { operation: 'changeSupportTicketPriority', action: 'PRIORITY_CHANGED', who: 'agent', to: unchanged, from: notClosed },
  category: { operation: 'changeSupportTicketCategory', action: 'CATEGORY_CHANGED', who: 'agent', to: unchanged, from: notClosed },
  rate: { operation: 'rateSupportTicket', action: 'RATED', who: 'requester', to: unchanged, from: ['RESOLVED', 'CLOSED'] },
  fields: { operation: 'updateSupportTicketFields', action: 'FIELDS_CHANGED', who: 'agent', to: unchanged, from: notClosed },
} satisfies Record<string, Move<TicketStatus, Who, ItemAction<'SUPPORT_TICKET'>>>;

export interface OpenTicketInput {
  subject: string;
  category: TicketCategory;
  priority: TicketPriority;
  message: string;
  idempotencyKey?: string | null;
  /** Checked against the organization's SUPPORT_TICKET custom field definitions. */
  customFields?: unknown;
}

type Query = { select?: Prisma.SupportTicketSelect; include?: Prisma.SupportTicketInclude };
type Data = Prisma.SupportTicketUncheckedUpdateInput;

/** What notifications about a ticket tell of it. */
const about = (ticket: SupportTicket) => ({ number: ticket.number, subject: ticket.subject });

/**
 * The support desk. Requesters see and act on their own tickets (reply in its
 * channel, rate, reopen, close); agents (OWNER, ADMIN, STAFF) see the
 * organization's queue and alone assign, escalate, resolve and change priority
 * or category. Escalations notify the organization's admins and nobody else.
 */
export class SupportTicketService {
  private readonly flow: Workflow<'SUPPORT_TICKET', SupportTicket, Who, Data, keyof typeof TICKET_MOVES>;
  private customFields: CustomFieldCheck | null = null;

  constructor(
    private readonly prisma: PrismaClient,
    channelLog: ChannelLog,
    notifications: NotificationService,
    private readonly messages: MessageService,
    private readonly clock: Clock,
    private readonly users: UserService,
  ) {
    const rules = {
      item: 'SUPPORT_TICKET',
      table: 'SupportTicket',
      machine: TICKET_MACHINE,
      get: (viewer, id) => this.get(viewer, id),
      authorize: (viewer, who, ticket) => {
        if (who === 'agent' && !isStaff(viewer)) throw forbidden('Only support agents do this');
        if (who === 'requester' && ticket.requesterId !== viewer.id) throw forbidden('Only the requester does this');
      },
      refusal: (status, to) => `The ticket is ${status}; it cannot become ${to}`,
      // An agent who acts on someone else's ticket joins its conversation.
      actorJoins: (viewer, _who, ticket) => isStaff(viewer) && ticket.requesterId !== viewer.id,
      write: (tx, id, status, data) => tx.supportTicket.update({ where: { id }, data: { status, ...data } }),
      reload: (id) => this.prisma.supportTicket.findUniqueOrThrow({ where: { id } }),
      // The SLA pause follows every status change into or out of PENDING_USER.
      onMove: (ticket, to, now) => pauseOnMove(ticket, to, now),
      notice: (ticket) => ({ type: 'SUPPORT_TICKET_STATUS', ticketId: ticket.id, data: about(ticket) }),
    } satisfies ItemRules<'SUPPORT_TICKET', SupportTicket, Who, Data>;
    this.flow = new Workflow({ prisma, channelLog, notifications, clock }, rules, TICKET_MOVES);
  }

  /** Checks tickets' customFields against the organization's definitions (wiring: once per app). */
  useCustomFields(check: CustomFieldCheck): void {
    this.customFields = check;
  }

  private get fieldCheck(): CustomFieldCheck {
    if (!this.customFields) throw new Error('SupportTicketService.useCustomFields was not called');
    return this.customFields;
  }

  visibleWhere(viewer: Viewer): Prisma.SupportTicketWhereInput {
    return readableSupportTicketWhere(viewer);
  }

  async get(viewer: Viewer, id: string, query: Query = {}): Promise<SupportTicket> {
    assertId(id, 'Support ticket');
    const ticket = await this.prisma.supportTicket.findFirst({ ...query, where: { id, ...this.visibleWhere(viewer) } });
    if (!ticket) throw notFound('Support ticket');
    return ticket as SupportTicket;
  }

  async listWhere(viewer: Viewer, filter: TicketFilter & { customFields?: unknown }): Promise<Prisma.SupportTicketWhereInput> {
    // A user the viewer cannot see is NOT_FOUND, as user(id) says.
    const named = namedUsers(filter);
    if (named.length) await this.users.visibleIds(viewer, named);
    const matching =
      filter.customFields == null
        ? null
        : await idsWithCustomFields(this.prisma, viewer.organizationId, 'SUPPORT_TICKET', filter.customFields);
    return {
      AND: [
        this.visibleWhere(viewer),
        ...filterWhere(filter, this.clock.now(), this.prisma.supportTicket.fields),
        ...(matching ? [{ id: { in: matching } }] : []),
      ],
    };
  }

  orderBy(order: TicketOrder): Prisma.SupportTicketOrderByWithRelationInput[] {
    return TICKET_ORDERS[order] ?? TICKET_ORDERS.NEWEST;
  }

  /** The ticket's clocks now. */
  sla(ticket: SupportTicket): SlaState {
    return slaState(ticket, this.clock.now());
  }

  async counts(viewer: Viewer): Promise<{ status: TicketStatus; count: number }[]> {
    const rows = await this.prisma.supportTicket.groupBy({ by: ['status'], where: this.visibleWhere(viewer), _count: true });
    return TICKET_STATUSES.map((status) => ({ status, count: rows.find((r) => r.status === status)?._count ?? 0 }));
  }

  /** The organization's SLA targets per priority, defaults where none was set. */
  async slaTargets(organizationId: string): Promise<(SlaTarget & { priority: TicketPriority })[]> {
    return targetsFor(await this.prisma.slaTarget.findMany({ where: { organizationId } }));
  }

  /** Admins set a priority's targets; they apply to tickets opened from then on. */
  async setSlaTarget(viewer: Viewer, priority: TicketPriority, firstResponseMinutes: number, resolutionMinutes: number) {
    if (!isAdmin(viewer)) throw forbidden('Only organization admins set SLA targets');
    if (firstResponseMinutes > resolutionMinutes) {
      throw badInput('firstResponseMinutes', 'The first response cannot be due after the resolution');
    }
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
    const customFields = await this.fieldCheck.validate(viewer.organizationId, 'SUPPORT_TICKET', input.customFields ?? null);
    return this.flow.create(viewer, input.idempotencyKey, { operation: 'openSupportTicket', action: 'OPENED' }, async (tx, log) => {
      const [counter] = await tx.$queryRaw<{ lastTicketNumber: number }[]>`
        UPDATE "Organization" SET "lastTicketNumber" = "lastTicketNumber" + 1 WHERE id = ${viewer.organizationId}::uuid RETURNING "lastTicketNumber"`;
      const number = counter!.lastTicketNumber;
      const channel = await openItemChannel(tx, log, viewer, { kind: 'SUPPORT', name: `Ticket ${number}`, topic: input.subject });
      const message = { organizationId: viewer.organizationId, channelId: channel.id, senderId: viewer.id, body };
      await log.append(channel.id, 'MESSAGE_ADDED', async (seq: number) =>
        messageSnapshot(await tx.message.create({ data: { ...message, seq } })),
      );
      return tx.supportTicket.create({
        data: {
          organizationId: viewer.organizationId,
          number,
          subject: input.subject,
          category: input.category,
          priority: input.priority,
          requesterId: viewer.id,
          channelId: channel.id,
          ...dueTimes(now, target),
          ...(customFields ? { customFields } : {}),
          createdAt: now,
        },
      });
    });
  }

  /** Agents move a ticket along the machine (IN_PROGRESS, PENDING_USER); named changes have their own methods. */
  setStatus(viewer: Viewer, id: string, status: 'IN_PROGRESS' | 'PENDING_USER', key?: string | null) {
    return this.flow.run(viewer, id, key, status);
  }

  /**
   * Assigns the ticket to an agent (the viewer when `assigneeId` is null), who
   * joins its channel; an OPEN ticket is then IN_PROGRESS.
   */
  async assign(viewer: Viewer, id: string, assigneeId: string | null, key?: string | null): Promise<SupportTicket> {
    const assignee = assigneeId ? await this.agent(viewer, assigneeId) : { id: viewer.id, displayName: viewer.displayName };
    return this.flow.run(viewer, id, key, 'assign', {
      data: () => ({ assigneeId: assignee.id }),
      detail: { assigneeId: assignee.id, assigneeName: assignee.displayName },
      joins: [assignee.id],
      notify: (_tx, ticket) => [{ userId: assignee.id, type: 'SUPPORT_TICKET_ASSIGNED', ticketId: ticket.id, data: about(ticket) }],
    });
  }

  /** Escalates within the organization: its admins are told. */
  escalate(viewer: Viewer, id: string, reason: string, key?: string | null): Promise<SupportTicket> {
    return this.flow.run(viewer, id, key, 'escalate', {
      reason,
      data: (now) => ({ escalatedAt: now, escalationReason: reason }),
      notify: async (tx, ticket) => {
        const admins = await tx.user.findMany({
          where: { organizationId: viewer.organizationId, role: { in: [...ADMIN_ROLES] }, deactivatedAt: null },
          select: { id: true },
        });
        const data = { ...about(ticket), reason };
        return admins.map((a) => ({ userId: a.id, type: 'SUPPORT_TICKET_ESCALATED' as const, ticketId: ticket.id, data }));
      },
    });
  }

  resolve(viewer: Viewer, id: string, resolution: string, key?: string | null): Promise<SupportTicket> {
    return this.flow.run(viewer, id, key, 'resolve', { reason: resolution, data: (now) => ({ resolution, resolvedAt: now }) });
  }

  close(viewer: Viewer, id: string, key?: string | null): Promise<SupportTicket> {
    return this.flow.run(viewer, id, key, 'close', { data: (now) => ({ closedAt: now }) });
  }

  /** A resolved ticket goes back to IN_PROGRESS; the resolution clock, never stopped by the resolution, keeps its due time. */
  reopen(viewer: Viewer, id: string, reason: string | null, key?: string | null): Promise<SupportTicket> {
    return this.flow.run(viewer, id, key, 'reopen', { reason, data: () => ({ resolvedAt: null }) });
  }

  /** A new priority moves both due times to what its targets give from the ticket's start, pauses included. */
  async changePriority(viewer: Viewer, id: string, priority: TicketPriority, key?: string | null): Promise<SupportTicket> {
    const target = (await this.slaTargets(viewer.organizationId)).find((t) => t.priority === priority)!;
    return this.flow.run(viewer, id, key, 'priority', {
      data: (_now, ticket) => ({ priority, ...dueTimes(ticket.createdAt, target, ticket.pausedMs) }),
      detail: (_tx, ticket) => ({ fromPriority: ticket.priority, toPriority: priority }),
    });
  }

  changeCategory(viewer: Viewer, id: string, category: TicketCategory, key?: string | null): Promise<SupportTicket> {
    return this.flow.run(viewer, id, key, 'category', {
      data: () => ({ category }),
      detail: (_tx, ticket) => ({ fromCategory: ticket.category, toCategory: category }),
    });
  }

  /**
   * Agents replace a ticket's custom fields (checked against the definitions;
   * keys left as stored stay as they are) until it is closed. Recorded like
   * other changes (FIELDS_CHANGED, naming the keys).
   */
  async updateFields(viewer: Viewer, id: string, customFields: unknown, key?: string | null): Promise<SupportTicket> {
    const current = await this.get(viewer, id);
    if (!isStaff(viewer)) throw forbidden('Only support agents do this');
    const value = await this.fieldCheck.validate(viewer.organizationId, 'SUPPORT_TICKET', customFields, current.customFields);
    return this.flow.run(viewer, id, key, 'fields', {
      data: () => ({ customFields: value ?? Prisma.DbNull }),
      detail: (_tx, before) => ({ fields: changedKeys(before.customFields, value) }),
    });
  }

  /** The requester rates a resolved (or closed) ticket, 1 to 5; rating again replaces it. */
  rate(viewer: Viewer, id: string, rating: number, comment: string | null, key?: string | null): Promise<SupportTicket> {
    return this.flow.run(viewer, id, key, 'rate', { data: () => ({ rating, ratingComment: comment }), detail: { rating } });
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
