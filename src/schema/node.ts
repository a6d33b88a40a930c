import { brandWithType } from '@pothos/core';
import { queryFromInfo } from '@pothos/plugin-prisma';
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { GraphQLResolveInfo } from 'graphql';
import { z } from 'zod';
import {
  isId,
  readableAttachmentWhere,
  readableAuditWhere,
  readableChangeOrderWhere,
  readableChannelMemberWhere,
  readableChannelWhere,
  readableClientRequestWhere,
  readableExportWhere,
  readableMessageEditWhere,
  readableMessageWhere,
  readableNotificationWhere,
  readableProjectAccessWhere,
  readableProjectWhere,
  readableSupportTicketWhere,
  readableUserWhere,
} from '../services/access.ts';
import type { AuthenticatedContext } from './context.ts';
import { builder } from './builder.ts';

/** Most ids one `nodes` call takes, like the other id lists of the schema. */
export const NODES_MAX = 100;

type Query = { select?: never; include?: never };
type Load = (ctx: AuthenticatedContext, ids: string[], query: Query) => Promise<{ id: string }[]>;

/**
 * How `node(id)` and `nodes(ids)` fetch each Node type: by id, filtered by the
 * type's read rule in access.ts, so they answer exactly what the type's own
 * root field or connection would. Every type that implements Node has an entry
 * (test/node.test.ts checks it against schema.graphql).
 */
export const NODE_LOADERS: Readonly<Record<string, Load>> = {
  Attachment: (ctx, ids, q) => ctx.prisma.attachment.findMany({ ...q, where: { id: { in: ids }, ...readableAttachmentWhere(ctx.viewer) } }),
  AuditEvent: (ctx, ids, q) => ctx.prisma.auditLog.findMany({ ...q, where: { id: { in: ids }, ...readableAuditWhere(ctx.viewer) } }),
  ChangeOrder: (ctx, ids, q) =>
    ctx.prisma.changeOrder.findMany({ ...q, where: { id: { in: ids }, ...readableChangeOrderWhere(ctx.viewer) } }),
  Channel: (ctx, ids, q) => ctx.prisma.channel.findMany({ ...q, where: { id: { in: ids }, ...readableChannelWhere(ctx.viewer) } }),
  ChannelMember: (ctx, ids, q) =>
    ctx.prisma.channelMember.findMany({ ...q, where: { id: { in: ids }, ...readableChannelMemberWhere(ctx.viewer) } }),
  ClientRequest: (ctx, ids, q) =>
    ctx.prisma.clientRequest.findMany({ ...q, where: { id: { in: ids }, ...readableClientRequestWhere(ctx.viewer) } }),
  Export: (ctx, ids, q) => ctx.prisma.export.findMany({ ...q, where: { id: { in: ids }, ...readableExportWhere(ctx.viewer) } }),
  Message: (ctx, ids, q) => ctx.prisma.message.findMany({ ...q, where: { id: { in: ids }, ...readableMessageWhere(ctx.viewer) } }),
  MessageEdit: (ctx, ids, q) =>
    ctx.prisma.messageEdit.findMany({ ...q, where: { id: { in: ids }, ...readableMessageEditWhere(ctx.viewer) } }),
  Notification: (ctx, ids, q) =>
    ctx.prisma.notification.findMany({ ...q, where: { id: { in: ids }, ...readableNotificationWhere(ctx.viewer) } }),
  Project: (ctx, ids, q) => ctx.prisma.project.findMany({ ...q, where: { id: { in: ids }, ...readableProjectWhere(ctx.viewer) } }),
  ProjectAccess: (ctx, ids, q) =>
    ctx.prisma.projectAccess.findMany({ ...q, where: { id: { in: ids }, ...readableProjectAccessWhere(ctx.viewer) } }),
  SupportTicket: (ctx, ids, q) =>
    ctx.prisma.supportTicket.findMany({ ...q, where: { id: { in: ids }, ...readableSupportTicketWhere(ctx.viewer) } }),
  User: (ctx, ids, q) => ctx.prisma.user.findMany({ ...q, where: { id: { in: ids }, ...readableUserWhere(ctx.viewer) } }),
};

/** A global id of a Node type with a row id that can exist; null for anything else. */
function parseNodeId(globalId: string): { typename: string; id: string } | null {
  try {
    const { typename, id } = decodeGlobalID(globalId);
    return Object.hasOwn(NODE_LOADERS, typename) && isId(id) ? { typename, id } : null;
  } catch {
    return null;
  }
}

/**
 * The nodes of `globalIds`, in order, one query per type for any number of
 * ids, each with the selection the operation asked of that type. An id the
 * viewer may not read, of another organization, missing, malformed or of a
 * type that is no Node is null: nothing tells those apart.
 */
async function loadNodes(ctx: AuthenticatedContext, info: GraphQLResolveInfo, globalIds: readonly string[]): Promise<(object | null)[]> {
  const parsed = globalIds.map(parseNodeId);
  const wanted = new Map<string, Set<string>>();
  for (const node of parsed) {
    if (!node) continue;
    const ids = wanted.get(node.typename) ?? new Set<string>();
    wanted.set(node.typename, ids.add(node.id));
  }
  const found = new Map<string, object>();
  await Promise.all(
    [...wanted].map(async ([typename, ids]) => {
      const query = await queryFromInfo({ context: ctx, info, typeName: typename, awaitSelections: true });
      // The rows are matched back to the ids by their id column.
      const withId = (query.select ? { select: { ...query.select, id: true } } : query) as Query;
      const rows = await NODE_LOADERS[typename]!(ctx, [...ids], withId);
      for (const row of rows) {
        brandWithType(row, typename as never);
        found.set(`${typename}:${row.id}`, row);
      }
    }),
  );
  return parsed.map((node) => (node ? (found.get(`${node.typename}:${node.id}`) ?? null) : null));
}

const Node = builder.nodeInterfaceRef();

builder.queryFields((t) => ({
  node: t.withAuth({ authenticated: true }).field({
    type: Node,
    nullable: true,
    description:
      'Any object by its global ID, as its own root field would answer it; null for an ID the viewer cannot read or that names nothing.',
    args: { id: t.arg.id() },
    resolve: async (_root, args, ctx, info) => (await loadNodes(ctx, info, [String(args.id)]))[0] ?? null,
  }),
  nodes: t.withAuth({ authenticated: true }).field({
    type: [Node],
    nullable: { list: false, items: true },
    description: `Objects by their global IDs (at most ${NODES_MAX}), in the order given; null for each ID node(id) would answer null for.`,
    args: { ids: t.arg.idList({ validate: z.array(z.unknown()).max(NODES_MAX) }) },
    resolve: (_root, args, ctx, info) => loadNodes(ctx, info, args.ids.map(String)),
  }),
}));
