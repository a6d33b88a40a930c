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
  description: 'One administrative change or request and ticket change: who, what, from, to, why, when.',
  fields: (t) => ({
    action: t.exposeString('action', { description: 'e.g. ClientRequest.APPROVED, SupportTicket.ASSIGNED, project.grant.' }),
    actorId: t.globalID({ nullable: true, resolve: (e) => (e.actorId ? { type: 'User', id: e.actorId } : null) }),
    targetType: t.exposeString('targetType'),
    targetId: t.globalID({ resolve: (e) => ({ type: e.targetType, id: e.targetId }) }),
    data: t.expose('data', { type: 'JSON', nullable: true, description: 'The change: from, to, reason and what else it concerns.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  fields: (t) => ({
    targetId: t.id({ required: false, description: 'The global ID of a request, ticket, project grant, user, ...' }),
    actorId: t.globalID({ for: User, required: false }),
    action: t.string({ required: false, validate: z.string().max(100) }),
  }),
});

/** A target's global ID as the audit log stores it: its type name and raw id. */
function target(globalId: string): { targetType: string; targetId: string } {
  try {
    const { typename, id } = decodeGlobalID(globalId);
    assertId(id, typename);
    return { targetType: typename, targetId: id };
  } catch {
    throw badInput('filter.targetId', 'targetId is not an ID');
  }
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
          target: args.filter?.targetId ? target(String(args.filter.targetId)) : null,
          actorId: args.filter?.actorId?.id ?? null,
          action: args.filter?.action ?? null,
        }),
        orderBy: { id: 'desc' },
      }),
  }),
}));
