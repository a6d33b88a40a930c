import { decodeGlobalID } from '@pothos/plugin-relay';
import { z } from 'zod';
import { assertId } from '../services/access.ts';
import { badInput } from '../services/errors.ts';
import { builder } from './builder.ts';
import { pageCap } from './pagination.ts';
import { User } from './user.ts';

builder.prismaNode('AuditLog', {
  name: 'AuditEvent',
  id: { field: 'id' },
  description:
    'One change an administrator may need to explain (channels, memberships, deletions, pins, sign-ins, users, keys, requests, tickets): who, what, from, to, why, when. Never the deleted content.',
  fields: (t) => ({
    action: t.exposeString('action', {
      description: 'e.g. channel.addMembers, message.delete, session.signInFailed, ClientRequest.APPROVED, project.grant.',
    }),
    actorId: t.globalID({ nullable: true, resolve: (e) => (e.actorId ? { type: 'User', id: e.actorId } : null) }),
    targetType: t.exposeString('targetType'),
    targetId: t.globalID({ resolve: (e) => ({ type: e.targetType, id: e.targetId }) }),
    data: t.expose('data', { type: 'JSON', nullable: true, description: 'The change: from, to, reason and what else it concerns.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  fields: (t) => ({
    targetId: t.id({
      required: false,
      description: 'The global ID of a channel, message (also one deleted for good), request, ticket, project grant, user, ...',
    }),
    actorId: t.globalID({ for: User, required: false }),
    action: t.string({ required: false, validate: z.string().max(100) }),
    from: t.field({ type: 'DateTime', required: false, description: 'Only entries made at or after this instant.' }),
    to: t.field({ type: 'DateTime', required: false, description: 'Only entries made before this instant.' }),
  }),
});

/** The types whose changes the audit trail records. */
const AUDITED = new Set([
  'Organization',
  'Channel',
  'Message',
  'Project',
  'ProjectAccess',
  'User',
  'ApiKey',
  'Session',
  'ClientRequest',
  'SupportTicket',
]);

/** A target's global ID as the audit log stores it: its type name and raw id. */
function target(globalId: string): { targetType: string; targetId: string } {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
    assertId(decoded.id, decoded.typename);
  } catch {
    throw badInput('filter.targetId', 'targetId is not an ID');
  }
  if (!AUDITED.has(decoded.typename)) {
    throw badInput('filter.targetId', `targetId must be the ID of one of: ${[...AUDITED].join(', ')}`);
  }
  return { targetType: decoded.typename, targetId: decoded.id };
}

builder.queryFields((t) => ({
  auditEvents: t.withAuth({ admin: true }).prismaConnection({
    type: 'AuditLog',
    cursor: 'id',
    maxSize: pageCap,
    description: 'The organization\u2019s audit trail, newest first (admins).',
    args: { filter: t.arg({ type: AuditEventFilter, required: false }) },
    resolve: async (query, _root, args, ctx) =>
      ctx.prisma.auditLog.findMany({
        ...query,
        where: await ctx.services.audit.where(ctx.viewer, {
          target: args.filter?.targetId != null ? target(String(args.filter.targetId)) : null,
          actorId: args.filter?.actorId?.id ?? null,
          action: args.filter?.action ?? null,
          from: args.filter?.from ?? null,
          to: args.filter?.to ?? null,
        }),
        orderBy: { id: 'desc' },
      }),
  }),
}));
