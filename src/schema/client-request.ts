import { z } from 'zod';
import {
  ClientRequestType as ClientRequestTypeValues,
  ClientRequestStatus as ClientRequestStatusValues,
  ChangeOrderStatus as ChangeOrderStatusValues,
} from '../generated/prisma/enums.ts';
import { builder } from './builder.ts';
import { readableChannelField } from './channel.ts';
import { Message } from './message.ts';
import { pageCap } from './pagination.ts';
import { Project } from './project.ts';
import { User } from './user.ts';
import { nameText } from './text.ts';
import { Attachment } from './attachment.ts';

export const ClientRequestType = builder.enumType(ClientRequestTypeValues, { name: 'ClientRequestType' });
export const ClientRequestStatus = builder.enumType(ClientRequestStatusValues, { name: 'ClientRequestStatus' });
const ChangeOrderStatus = builder.enumType(ChangeOrderStatusValues, { name: 'ChangeOrderStatus' });
const ClientRequestOrder = builder.enumType('ClientRequestOrder', {
  values: { NEWEST: { description: 'Newest first.' }, STATUS: { description: 'By status (PENDING first), newest first within one.' } },
});

const title = nameText(200);
const text = z.string().trim().min(1).max(10_000);
const note = z.string().trim().max(2000);
const idempotencyKey = z.string().min(1).max(200);

export const ClientRequest = builder.prismaNode('ClientRequest', {
  id: { field: 'id' },
  fields: (t) => ({
    number: t.exposeInt('number', { description: 'Counts per project.' }),
    project: t.relation('project'),
    title: t.exposeString('title'),
    description: t.exposeString('description'),
    type: t.expose('type', { type: ClientRequestType }),
    status: t.expose('status', { type: ClientRequestStatus }),
    requester: t.relation('requester'),
    decisionNote: t.exposeString('decisionNote', {
      nullable: true,
      description: 'The approval note, rejection reason or conversion note.',
    }),
    decidedBy: t.relation('decidedBy', { nullable: true }),
    decidedAt: t.expose('decidedAt', { type: 'DateTime', nullable: true }),
    channelId: t.globalID({ description: 'The request\u2019s conversation.', resolve: (r) => ({ type: 'Channel', id: r.channelId }) }),
    channel: t.loadable(readableChannelField()),
    sourceMessageId: t.globalID({
      nullable: true,
      description: 'The message the request was made from (read it with message(id)).',
      resolve: (r) => (r.sourceMessageId ? { type: 'Message', id: r.sourceMessageId } : null),
    }),
    changeOrder: t.relation('changeOrder', { nullable: true, description: 'What a CONVERTED request became.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaNode('ChangeOrder', {
  id: { field: 'id' },
  fields: (t) => ({
    number: t.exposeInt('number', { description: 'Counts per project.' }),
    project: t.relation('project'),
    title: t.exposeString('title'),
    description: t.exposeString('description'),
    status: t.expose('status', { type: ChangeOrderStatus }),
    sourceRequest: t.relation('sourceRequest'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const StatusCount = builder.objectRef<{ status: ClientRequestStatusValues; count: number }>('ClientRequestStatusCount').implement({
  fields: (t) => ({
    status: t.field({ type: ClientRequestStatus, resolve: (c) => c.status }),
    count: t.exposeInt('count'),
  }),
});

const ClientRequestFilter = builder.inputType('ClientRequestFilter', {
  fields: (t) => ({
    projectId: t.globalID({ for: Project, required: false }),
    status: t.field({ type: ClientRequestStatus, required: false }),
    type: t.field({ type: ClientRequestType, required: false }),
    requesterId: t.globalID({ for: User, required: false }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description:
        'Requests whose customFields contain this JSON object (e.g. {"budget": 500}; a list value matches lists holding all its items).',
    }),
  }),
});

const CreateClientRequestInput = builder.inputType('CreateClientRequestInput', {
  fields: (t) => ({
    projectId: t.globalID({ for: Project }),
    title: t.string({ validate: title, description: 'At most 200 characters.' }),
    description: t.string({ validate: text }),
    type: t.field({ type: ClientRequestType }),
    fromMessageId: t.globalID({ for: Message, required: false, description: 'Make the request from this message and keep a link to it.' }),
    attachmentIds: t.globalIDList({
      for: Attachment,
      required: false,
      description:
        'Files from uploadFile to file with the request, in this order (at most 10); each the viewer\u2019s own upload, not attached yet.',
    }),
    idempotencyKey: t.string({
      required: false,
      validate: idempotencyKey,
      description: 'A retry with the same key returns the first result.',
    }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description: 'A JSON object of custom fields, checked against the CLIENT_REQUEST custom field definitions.',
    }),
  }),
});

const UpdateClientRequestInput = builder.inputType('UpdateClientRequestInput', {
  fields: (t) => ({
    id: t.globalID({ for: ClientRequest }),
    title: t.string({ required: false, validate: title }),
    description: t.string({ required: false, validate: text }),
    type: t.field({ type: ClientRequestType, required: false }),
    idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
  }),
});

/** An action on one request with a note for the requester, and an optional idempotency key. */
const noteInput = (name: string, description: string) =>
  builder.inputType(name, {
    description,
    fields: (t) => ({
      id: t.globalID({ for: ClientRequest }),
      note: t.string({ required: false, validate: note }),
      idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
    }),
  });

/** An action on one request with its reason, and an optional idempotency key. */
const reasonInput = (name: string, description: string, required: boolean) =>
  builder.inputType(name, {
    description,
    fields: (t) => ({
      id: t.globalID({ for: ClientRequest }),
      reason: t.string({ required, validate: required ? note.min(1) : note }),
      idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
    }),
  });

const WithdrawClientRequestInput = reasonInput('WithdrawClientRequestInput', 'The requester withdraws their pending request.', false);
const ApproveClientRequestInput = noteInput('ApproveClientRequestInput', 'Staff approve a pending request.');
const RejectClientRequestInput = reasonInput('RejectClientRequestInput', 'Staff reject a pending request; the reason is required.', true);
const ConvertClientRequestInput = noteInput(
  'ConvertClientRequestInput',
  'Staff turn a pending or approved request into a draft change order.',
);

builder.queryFields((t) => ({
  clientRequests: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'ClientRequest',
    cursor: 'id',
    maxSize: pageCap,
    description: 'Requests of the projects the viewer can see, newest first (or by status).',
    args: {
      filter: t.arg({ type: ClientRequestFilter, required: false }),
      orderBy: t.arg({ type: ClientRequestOrder, required: false }),
    },
    resolve: async (query, _root, args, ctx) => {
      const where = await ctx.services.clientRequests.listWhere(ctx.viewer, {
        projectId: args.filter?.projectId?.id,
        status: args.filter?.status,
        type: args.filter?.type,
        requesterId: args.filter?.requesterId?.id,
        customFields: args.filter?.customFields,
      });
      return ctx.prisma.clientRequest.findMany({
        ...query,
        where,
        orderBy: args.orderBy === 'STATUS' ? [{ status: 'asc' }, { id: 'desc' }] : [{ id: 'desc' }],
      });
    },
  }),
  clientRequest: t.withAuth({ authenticated: true }).prismaField({
    type: 'ClientRequest',
    args: { id: t.arg.globalID({ for: ClientRequest }) },
    resolve: (query, _root, args, ctx) => ctx.services.clientRequests.get(ctx.viewer, args.id.id, query),
  }),
  clientRequestCounts: t.withAuth({ authenticated: true }).field({
    type: [StatusCount],
    description: 'How many of the project\u2019s requests are in each status.',
    args: { projectId: t.arg.globalID({ for: Project }) },
    resolve: (_root, args, ctx) => ctx.services.clientRequests.counts(ctx.viewer, args.projectId.id),
  }),
}));

builder.mutationFields((t) => {
  /** Reads the changed request back with the response's selection. */
  const reload = (ctx: { prisma: import('../generated/prisma/client.ts').PrismaClient }, query: object, id: string) =>
    ctx.prisma.clientRequest.findUniqueOrThrow({ ...query, where: { id } });
  return {
    createClientRequest: t.withAuth({ authenticated: true }).prismaField({
      type: 'ClientRequest',
      args: { input: t.arg({ type: CreateClientRequestInput }) },
      resolve: async (query, _root, { input }, ctx) => {
        const request = await ctx.services.clientRequests.create(ctx.viewer, {
          ...input,
          projectId: input.projectId.id,
          fromMessageId: input.fromMessageId?.id,
          attachmentIds: input.attachmentIds?.map((id) => id.id),
        });
        return reload(ctx, query, request.id);
      },
    }),
    updateClientRequest: t.withAuth({ authenticated: true }).prismaField({
      type: 'ClientRequest',
      description: 'The requester edits their pending request.',
      args: { input: t.arg({ type: UpdateClientRequestInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, (await ctx.services.clientRequests.update(ctx.viewer, input.id.id, input)).id),
    }),
    withdrawClientRequest: t.withAuth({ authenticated: true }).prismaField({
      type: 'ClientRequest',
      args: { input: t.arg({ type: WithdrawClientRequestInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(
          ctx,
          query,
          (await ctx.services.clientRequests.withdraw(ctx.viewer, input.id.id, input.reason ?? null, input.idempotencyKey)).id,
        ),
    }),
    approveClientRequest: t.withAuth({ authenticated: true }).prismaField({
      type: 'ClientRequest',
      args: { input: t.arg({ type: ApproveClientRequestInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(
          ctx,
          query,
          (await ctx.services.clientRequests.approve(ctx.viewer, input.id.id, input.note ?? null, input.idempotencyKey)).id,
        ),
    }),
    rejectClientRequest: t.withAuth({ authenticated: true }).prismaField({
      type: 'ClientRequest',
      args: { input: t.arg({ type: RejectClientRequestInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(ctx, query, (await ctx.services.clientRequests.reject(ctx.viewer, input.id.id, input.reason!, input.idempotencyKey)).id),
    }),
    convertClientRequest: t.withAuth({ authenticated: true }).prismaField({
      type: 'ClientRequest',
      description: 'Creates a draft change order from the request (its `changeOrder`).',
      args: { input: t.arg({ type: ConvertClientRequestInput }) },
      resolve: async (query, _root, { input }, ctx) =>
        reload(
          ctx,
          query,
          (await ctx.services.clientRequests.convert(ctx.viewer, input.id.id, input.note ?? null, input.idempotencyKey)).id,
        ),
    }),
  };
});
