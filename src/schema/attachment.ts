import type { Attachment as AttachmentRow } from '../generated/prisma/client.ts';
import { GraphQLError } from 'graphql';
import type { AuthenticatedContext, Context } from './context.ts';
import type { UploadedFile, Variant } from '../services/attachments.ts';
import { builder } from './builder.ts';

// Attachments (issue 12). Files go up as GraphQL multipart requests
// (uploadFile), come back as Attachment objects whose URLs are signed for the
// viewer, and are then attached by id to a message or a client request.

/** A file part of a GraphQL multipart request, as Yoga parses it. */
export const Upload = builder.scalarType('Upload', {
  description:
    'A file sent as a part of a GraphQL multipart request (the graphql-multipart-request-spec). Input only. ' +
    'Send the header `x-graphql-yoga-csrf: 1` with every multipart request.',
  serialize: () => {
    throw new GraphQLError('Upload is an input-only scalar');
  },
  parseValue: (value) => {
    if (!isFile(value)) throw new GraphQLError('Upload expects a file part of a multipart request');
    return value;
  },
});

function isFile(value: unknown): value is UploadedFile {
  return typeof value === 'object' && value !== null && typeof (value as UploadedFile).arrayBuffer === 'function' && 'name' in value;
}

export const AttachmentKind = builder.enumType('AttachmentKind', {
  description: 'What a file is, decided from its content when it was uploaded.',
  values: {
    IMAGE: { description: 'JPEG, PNG, GIF, WebP or BMP; has dimensions and thumbnails.' },
    PDF: {},
    DOCUMENT: { description: 'Word: .doc or .docx.' },
    SPREADSHEET: { description: 'Excel: .xls or .xlsx.' },
    TEXT: { description: 'Plain text or CSV (UTF-8).' },
  } as const,
});

const Thumbnail = builder.objectRef<{ attachment: AttachmentRow; width: number }>('AttachmentThumbnail').implement({
  description: 'A smaller WebP copy of an image, fit inside width × width.',
  fields: (t) => ({
    width: t.int({ description: 'The box it fits in (320 or 1280); the image is never enlarged.', resolve: (th) => th.width }),
    url: t.string({ resolve: (th, _args, ctx) => fileUrl(ctx, th.attachment, String(th.width) as Variant) }),
  }),
});

function fileUrl(ctx: Context, attachment: AttachmentRow, variant: Variant): string {
  const viewer = (ctx as AuthenticatedContext).viewer;
  return ctx.services.fileUrls.url({ attachmentId: attachment.id, organizationId: attachment.organizationId, userId: viewer.id, variant })
    .url;
}

export const Attachment = builder.prismaNode('Attachment', {
  id: { field: 'id' },
  description:
    'An uploaded file. Its URLs are signed for the viewer and work for FILE_URL_TTL_SECONDS (see urlExpiresAt); ' +
    'ask again for fresh ones. Every download checks that the viewer may still read the file.',
  fields: (t) => ({
    name: t.exposeString('name', {
      description: 'The uploader\u2019s file name, cleaned (no paths, control or bidi characters); the extension matches the content.',
    }),
    kind: t.field({ type: AttachmentKind, resolve: (a) => a.kind }),
    contentType: t.exposeString('contentType', { description: 'The MIME type the file is served with, decided from its content.' }),
    size: t.exposeInt('size', { description: 'Bytes of the original as served (images: without their metadata).' }),
    width: t.exposeInt('width', { nullable: true, description: 'Images: pixels, after applying the EXIF orientation.' }),
    height: t.exposeInt('height', { nullable: true }),
    url: t.string({
      description: 'The original. Images are served inline; other files as downloads (Content-Disposition: attachment).',
      resolve: (a, _args, ctx) => fileUrl(ctx, a, 'original'),
    }),
    urlExpiresAt: t.field({
      type: 'DateTime',
      description: 'When the URLs handed out now stop working.',
      resolve: (_a, _args, ctx) => new Date(ctx.services.fileUrls.expiresAt() * 1000),
    }),
    thumbnails: t.field({
      type: [Thumbnail],
      description: 'Images only: WebP thumbnails, smallest first. Empty for other files.',
      resolve: (a) => a.thumbnails.map((width) => ({ attachment: a, width })),
    }),
    uploader: t.relation('uploader', {
      resolve: (query, a, _args, ctx) => ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: a.uploaderId } }),
    }),
    attached: t.boolean({
      description: 'false until it is sent with a message or added to a request; unattached uploads are deleted after a day.',
      resolve: (a) => a.state === 'ATTACHED',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.mutationFields((t) => ({
  uploadFile: t.withAuth({ authenticated: true }).prismaField({
    type: 'Attachment',
    description:
      'Stores a file (a GraphQL multipart request) and returns it unattached; send it with sendMessage(input: { attachmentIds }) ' +
      'or add it to a client request. The type is decided from the content: images (JPEG, PNG, GIF, WebP, BMP), PDF, ' +
      'Word, Excel, plain text and CSV; anything else is BAD_USER_INPUT, as is a file over UPLOAD_MAX_FILE_BYTES.',
    args: { file: t.arg({ type: Upload }) },
    resolve: (_query, _root, args, ctx) => ctx.services.attachments.upload(ctx.viewer, args.file),
  }),
}));
