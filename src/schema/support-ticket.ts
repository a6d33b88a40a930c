import { z } from 'zod';
import {
  TicketCategory as TicketCategoryValues,
  TicketPriority as TicketPriorityValues,
  TicketStatus as TicketStatusValues,
} from '../generated/prisma/enums.ts';
import { builder } from './builder.ts';
import { readableChannelField } from './channel.ts';
import { pageCap } from './pagination.ts';
import { User } from './user.ts';
import { nameText } from './text.ts';

const TicketCategory = builder.enumType(TicketCategoryValues, { name: 'TicketCategory' });
export const TicketPriority = builder.enumType(TicketPriorityValues, { name: 'TicketPriority' });
export const TicketStatus = builder.enumType(TicketStatusValues, { name: 'TicketStatus' });
const SettableTicketStatus = builder.enumType('SettableTicketStatus', {
  description: 'The moves an agent makes with setSupportTicketStatus; the others have their own mutations.',
  values: ['IN_PROGRESS', 'PENDING_USER'] as const satisfies readonly TicketStatusValues[],
});
const TicketOrder = builder.enumType('SupportTicketOrder', {
  values: {
    NEWEST: { description: 'Newest first.' },
    OLDEST: { description: 'Oldest first: the queue.' },
    PRIORITY: { description: 'URGENT first, oldest first within a priority.' },
    RESOLUTION_DUE: { description: 'Soonest resolution due time first.' },
  },
});

const idempotencyKey = z.string().min(1).max(200);
const text = z.string().trim().min(1).max(2000);

export const SupportTicket = builder.prismaNode('SupportTicket', {
  id: { field: 'id' },
  fields: (t) => ({
    number: t.exposeInt('number', { description: 'Counts per organization.' }),
    subject: t.exposeString('subject'),
    category: t.expose('category', { type: TicketCategory }),
    priority: t.expose('priority', { type: TicketPriority }),
    status: t.expose('status', { type: TicketStatus }),
    requester: t.relation('requester'),
    assignee: t.relation('assignee', { nullable: true }),
    channelId: t.globalID({
      description: 'The ticket\u2019s conversation.',
      resolve: (ticket) => ({ type: 'Channel', id: ticket.channelId }),
    }),
    channel: t.loadable(readableChannelField()),
    escalatedAt: t.expose('escalatedAt', { type: 'DateTime', nullable: true }),
    escalationReason: t.exposeString('escalationReason', { nullable: true }),
    resolution: t.exposeString('resolution', { nullable: true }),
    resolvedAt: t.expose('resolvedAt', { type: 'DateTime', nullable: true }),
    closedAt: t.expose('closedAt', { type: 'DateTime', nullable: true }),
    firstResponseAt: t.expose('firstResponseAt', {
      type: 'DateTime',
      nullable: true,
      description: 'The first message of an agent in the ticket\u2019s channel.',
    }),
    firstResponseDueAt: t.field({
      type: 'DateTime',
      description: 'When the first response is due; moves on while the ticket waits for its requester.',
      resolve: (ticket, _args, ctx) => ctx.services.supportTickets.sla(ticket).firstResponseDueAt,
    }),
    resolutionDueAt: t.field({
      type: 'DateTime',
      resolve: (ticket, _args, ctx) => ctx.services.supportTickets.sla(ticket).resolutionDueAt,
    }),
    firstResponseBreached: t.boolean({ resolve: (ticket, _args, ctx) => ctx.services.supportTickets.sla(ticket).firstResponseBreached }),
    resolutionBreached: t.boolean({ resolve: (ticket, _args, ctx) => ctx.services.supportTickets.sla(ticket).resolutionBreached }),
    waitingSince: t.expose('pendingSince', {
      type: 'DateTime',
      nullable: true,
      description: 'Since when the ticket waits for its requester (SLA clocks paused).',
    }),
    rating: t.exposeInt('rating', { nullable: true, description: '1 to 5, from the requester after resolution.' }),
    ratingComment: t.exposeString('ratingComment', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const StatusCount = builder.objectRef<{ status: TicketStatusValues; count: number }>('SupportTicketStatusCount').implement({
  fields: (t) => ({
    status: t.field({ type: TicketStatus, resolve: (c) => c.status }),
    count: t.exposeInt('count'),
  }),
});

const SlaTarget = builder
  .objectRef<{ priority: TicketPriorityValues; firstResponseMinutes: number; resolutionMinutes: number }>('SlaTarget')
  .implement({
    fields: (t) => ({
      priority: t.field({ type: TicketPriority, resolve: (s) => s.priority }),
      firstResponseMinutes: t.exposeInt('firstResponseMinutes'),
      resolutionMinutes: t.exposeInt('resolutionMinutes'),
    }),
  });

const SupportTicketFilter = builder.inputType('SupportTicketFilter', {
  fields: (t) => ({
    status: t.field({ type: TicketStatus, required: false }),
    priority: t.field({ type: TicketPriority, required: false }),
    category: t.field({ type: TicketCategory, required: false }),
    assigneeId: t.globalID({ for: User, required: false }),
    unassigned: t.boolean({ required: false, description: 'true: tickets nobody is assigned to; false: assigned ones.' }),
    breached: t.boolean({ required: false, description: 'true: a due time has passed before what it was for happened.' }),
    requesterId: t.globalID({ for: User, required: false }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description:
        'Tickets whose customFields contain this JSON object (e.g. {"site": "north"}; a list value matches lists holding all its items).',
    }),
  }),
});

const OpenSupportTicketInput = builder.inputType('OpenSupportTicketInput', {
  fields: (t) => ({
    subject: t.string({ validate: nameText(200) }),
    category: t.field({ type: TicketCategory }),
    priority: t.field({ type: TicketPriority }),
    message: t.string({ description: 'The first message of the ticket\u2019s conversation.' }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description: 'A JSON object of custom fields, checked against the SUPPORT_TICKET custom field definitions.',
    }),
  }),
});

const SetStatusInput = builder.inputType('SetSupportTicketStatusInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    status: t.field({ type: SettableTicketStatus }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const AssignInput = builder.inputType('AssignSupportTicketInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    assigneeId: t.globalID({ for: User, required: false, description: 'An agent of the organization; omitted: the viewer.' }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const EscalateInput = builder.inputType('EscalateSupportTicketInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    reason: t.string({ validate: text }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const ResolveInput = builder.inputType('ResolveSupportTicketInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    resolution: t.string({ validate: text }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const ReopenInput = builder.inputType('ReopenSupportTicketInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    reason: t.string({ required: false, validate: text }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const CloseInput = builder.inputType('CloseSupportTicketInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const PriorityInput = builder.inputType('ChangeSupportTicketPriorityInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    priority: t.field({ type: TicketPriority }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const CategoryInput = builder.inputType('ChangeSupportTicketCategoryInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    category: t.field({ type: TicketCategory }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const RateInput = builder.inputType('RateSupportTicketInput', {
  fields: (t) => ({
    id: t.globalID({ for: SupportTicket }),
    rating: t.int({ validate: z.number().int().min(1).max(5) }),
    comment: t.string({ required: false, validate: z.string().trim().max(2000) }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});
const SlaTargetInput = builder.inputType('SetSlaTargetInput', {
  fields: (t) => ({
    priority: t.field({ type: TicketPriority }),
    firstResponseMinutes: t.int({ validate: z.number().int().min(1).max(525_600) }),
    resolutionMinutes: t.int({ validate: z.number().int().min(1).max(525_600) }),
  }),
});

builder.queryFields((t) => ({
  supportTickets: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'SupportTicket',
    cursor: 'id',
    maxSize: pageCap,
    description: 'The organization\u2019s queue for agents; the viewer\u2019s own tickets for everyone else.',
    args: {
      filter: t.arg({ type: SupportTicketFilter, required: false }),
      orderBy: t.arg({ type: TicketOrder, required: false }),
    },
    resolve: async (query, _root, args, ctx) =>
      ctx.prisma.supportTicket.findMany({
        ...query,
        where: await ctx.services.supportTickets.listWhere(ctx.viewer, {
          ...args.filter,
          assigneeId: args.filter?.assigneeId?.id,
          requesterId: args.filter?.requesterId?.id,
        }),
        orderBy: ctx.services.supportTickets.orderBy(args.orderBy ?? 'NEWEST'),
      }),
  }),
  supportTicket: t.withAuth({ authenticated: true }).prismaField({
    type: 'SupportTicket',
    args: { id: t.arg.globalID({ for: SupportTicket }) },
    resolve: (query, _root, args, ctx) => ctx.services.supportTickets.get(ctx.viewer, args.id.id, query),
  }),
  supportTicketCounts: t.withAuth({ authenticated: true }).field({
    type: [StatusCount],
    description: 'How many of the tickets the viewer sees are in each status.',
    resolve: (_root, _args, ctx) => ctx.services.supportTickets.counts(ctx.viewer),
  }),
  slaTargets: t.withAuth({ authenticated: true }).field({
    type: [SlaTarget],
    description: 'First-response and resolution targets per priority (defaults where the organization set none).',
    resolve: (_root, _args, ctx) => ctx.services.supportTickets.slaTargets(ctx.viewer.organizationId),
  }),
}));

builder.mutationFields((t) => {
  type Ctx = { prisma: import('../generated/prisma/client.ts').PrismaClient };
  const reload = (ctx: Ctx, query: object, ticket: { id: string }) =>
    ctx.prisma.supportTicket.findUniqueOrThrow({ ...query, where: { id: ticket.id } });
  const tickets = (ctx: { services: import('../services/index.ts').Services }) => ctx.services.supportTickets;
  return {
    openSupportTicket: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      description: 'Opens a ticket with its own conversation (the requester in it, the first message posted).',
      args: { input: t.arg({ type: OpenSupportTicketInput }) },
      resolve: async (query, _root, { input }, ctx) => reload(ctx, query, await tickets(ctx).open(ctx.viewer, input)),
    }),
    setSupportTicketStatus: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      description: 'Agents: IN_PROGRESS (from OPEN, PENDING_USER, ESCALATED) or PENDING_USER (from IN_PROGRESS; pauses the SLA clocks).',
      args: { input: t.arg({ type: SetStatusInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).setStatus(ctx.viewer, input.id.id, input.status, input.idempotencyKey)),
    }),
    assignSupportTicket: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      description:
        'Agents assign a ticket (to themselves by default); the assignee joins its conversation; an OPEN ticket becomes IN_PROGRESS.',
      args: { input: t.arg({ type: AssignInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).assign(ctx.viewer, input.id.id, input.assigneeId?.id ?? null, input.idempotencyKey)),
    }),
    escalateSupportTicket: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      description: 'Agents escalate an OPEN, IN_PROGRESS or PENDING_USER ticket; the organization\u2019s admins are notified.',
      args: { input: t.arg({ type: EscalateInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).escalate(ctx.viewer, input.id.id, input.reason, input.idempotencyKey)),
    }),
    resolveSupportTicket: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      args: { input: t.arg({ type: ResolveInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).resolve(ctx.viewer, input.id.id, input.resolution, input.idempotencyKey)),
    }),
    reopenSupportTicket: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      description: 'The requester or an agent takes a RESOLVED ticket back to IN_PROGRESS (CLOSED is final).',
      args: { input: t.arg({ type: ReopenInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).reopen(ctx.viewer, input.id.id, input.reason ?? null, input.idempotencyKey)),
    }),
    closeSupportTicket: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      description: 'The requester or an agent closes a RESOLVED ticket.',
      args: { input: t.arg({ type: CloseInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).close(ctx.viewer, input.id.id, input.idempotencyKey)),
    }),
    changeSupportTicketPriority: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      description: 'Agents change the priority; both due times follow the new priority\u2019s targets.',
      args: { input: t.arg({ type: PriorityInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).changePriority(ctx.viewer, input.id.id, input.priority, input.idempotencyKey)),
    }),
    changeSupportTicketCategory: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      args: { input: t.arg({ type: CategoryInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).changeCategory(ctx.viewer, input.id.id, input.category, input.idempotencyKey)),
    }),
    rateSupportTicket: t.withAuth({ authenticated: true }).prismaField({
      type: 'SupportTicket',
      description: 'The requester rates a RESOLVED or CLOSED ticket from 1 to 5.',
      args: { input: t.arg({ type: RateInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, await tickets(ctx).rate(ctx.viewer, input.id.id, input.rating, input.comment ?? null, input.idempotencyKey)),
    }),
    setSlaTarget: t.withAuth({ authenticated: true }).field({
      type: SlaTarget,
      description: 'Admins set a priority\u2019s SLA targets in minutes; tickets opened from then on use them.',
      args: { input: t.arg({ type: SlaTargetInput }) },
      resolve: (_root, { input }, ctx) =>
        tickets(ctx).setSlaTarget(ctx.viewer, input.priority, input.firstResponseMinutes, input.resolutionMinutes),
    }),
  };
});
