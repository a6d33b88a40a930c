import type { Export as ExportRow } from '../generated/prisma/client.ts';
import type {
  ExportFormat as ExportFormatValue,
  ExportKind as ExportKindValue,
  ExportStatus as ExportStatusValue,
} from '../generated/prisma/enums.ts';
import type { ExportSnapshot } from '../bus/pubsub.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { pageCap } from './pagination.ts';

// Exports (issue 14 §5): services/exports.ts produces them in the background;
// their requester follows them on viewerEvents (ExportUpdatedEvent) and
// downloads the file from `downloadUrl`.

const ExportKind = builder.enumType('ExportKind', {
  values: {
    CHANNEL: { description: 'One channel\u2019s history (exportChannel).' },
    ORGANIZATION: { description: 'The organization\u2019s channels, messages, requests and tickets as JSON lines (exportOrganization).' },
  } satisfies Record<ExportKindValue, { description: string }>,
});

const ExportFormat = builder.enumType('ExportFormat', {
  values: {
    JSON: { description: 'One JSON document: the channel, its members and its messages in order.' },
    HTML: { description: 'A self-contained page (inline CSS, no script) to read, search and print (to PDF) in any browser.' },
    JSONL: { description: 'JSON lines, one record per line with a `type` field (organization exports).' },
  } satisfies Record<ExportFormatValue, { description: string }>,
});

const ChannelExportFormat = builder.enumType('ChannelExportFormat', {
  values: { JSON: { description: 'Machine-readable.' }, HTML: { description: 'Human-readable, printable.' } },
});

const ExportStatus = builder.enumType('ExportStatus', {
  values: {
    PENDING: { description: 'Waiting for a runner.' },
    RUNNING: { description: 'Being written: see progress and total.' },
    READY: { description: 'Done: download it from downloadUrl until expiresAt.' },
    FAILED: { description: 'Not produced: see error, and request it again.' },
    EXPIRED: { description: 'Its file was deleted after EXPORT_TTL_HOURS.' },
  } satisfies Record<ExportStatusValue, { description: string }>,
});

// Every field but `channel` and `downloadUrl` reads the row's own columns, so a
// live update's snapshot resolves without a query.
export const Export = builder.prismaNode('Export', {
  id: { field: 'id' },
  description: 'An export the viewer asked for, produced in the background. Only its requester sees it.',
  fields: (t) => ({
    kind: t.expose('kind', { type: ExportKind }),
    format: t.expose('format', { type: ExportFormat }),
    status: t.expose('status', { type: ExportStatus }),
    progress: t.exposeInt('progress', { description: 'Items written so far (channels, messages, requests, tickets).' }),
    total: t.exposeInt('total', { nullable: true, description: 'Items to write, once the run has counted them.' }),
    channel: t.field({
      type: Channel,
      nullable: true,
      description: 'The exported channel (channel exports), while the viewer still reads it.',
      resolve: (e, _args, ctx) => (e.channelId && ctx.viewer ? ctx.services.channels.get(ctx.viewer, e.channelId).catch(() => null) : null),
    }),
    error: t.exposeString('error', { nullable: true, description: 'Why the export failed.' }),
    byteSize: t.exposeInt('byteSize', { nullable: true }),
    fileName: t.exposeString('fileName', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true, description: 'When the file is deleted.' }),
    downloadUrl: t.string({
      nullable: true,
      description:
        'A signed URL for the file, for the requester while the export is READY; it works for FILE_URL_TTL_SECONDS ' +
        '(at most until expiresAt): ask again for a fresh one. The server checks the requester again on every download.',
      resolve: (e, _args, ctx) => (ctx.viewer ? ctx.services.exports.downloadUrl(ctx.viewer, e) : null),
    }),
  }),
});

/** A live update resolved as the row it was made from. */
export const exportFromSnapshot = (e: ExportSnapshot): ExportRow => ({
  ...e,
  createdAt: new Date(e.createdAt),
  startedAt: e.startedAt === null ? null : new Date(e.startedAt),
  finishedAt: e.finishedAt === null ? null : new Date(e.finishedAt),
  expiresAt: e.expiresAt === null ? null : new Date(e.expiresAt),
});

builder.queryFields((t) => ({
  exports: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'Export',
    cursor: 'id',
    maxSize: pageCap,
    description: 'The viewer\u2019s own exports, newest first.',
    resolve: (query, _root, _args, ctx) =>
      ctx.prisma.export.findMany({ ...query, where: ctx.services.exports.listWhere(ctx.viewer), orderBy: { id: 'desc' } }),
  }),
  export: t.withAuth({ authenticated: true }).prismaField({
    type: 'Export',
    description: 'One of the viewer\u2019s exports; anyone else\u2019s is NOT_FOUND.',
    args: { id: t.arg.globalID({ for: Export }) },
    resolve: (query, _root, args, ctx) => ctx.services.exports.get(ctx.viewer, args.id.id, query),
  }),
}));

builder.mutationFields((t) => ({
  exportChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'Export',
    description:
      'Exports a channel the viewer reads, in the background: the answer is PENDING; follow it on viewerEvents ' +
      '(ExportUpdatedEvent) and download it from downloadUrl once READY. Deleted messages are tombstones without their content.',
    args: { channelId: t.arg.globalID({ for: Channel }), format: t.arg({ type: ChannelExportFormat }) },
    // The row as created (PENDING): its runner may already have moved on, which viewerEvents tells.
    resolve: (_query, _root, args, ctx) => ctx.services.exports.exportChannel(ctx.viewer, args.channelId.id, args.format),
  }),
  exportOrganization: t.withAuth({ admin: true }).prismaField({
    type: 'Export',
    description:
      'Exports the organization as JSON lines (owners and admins), in the background: users\u2019 profiles, projects, ' +
      'the channels the viewer reads (not others\u2019 direct conversations) with members and messages, requests and tickets.',
    resolve: (_query, _root, _args, ctx) => ctx.services.exports.exportOrganization(ctx.viewer),
  }),
}));
