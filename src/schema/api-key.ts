import type { ApiKey as ApiKeyRow } from '../generated/prisma/client.ts';
import { builder } from './builder.ts';
import { pageCap } from './pagination.ts';
import { nameText } from './text.ts';

// Organization API keys (services/api-keys.ts): owners and admins create, list
// and revoke them; the key itself is in createApiKey's answer and nowhere else.

export const ApiKey = builder.prismaObject('ApiKey', {
  description: 'An organization API key for integration operations (the key itself is shown once, by createApiKey).',
  fields: (t) => ({
    id: t.globalID({ resolve: (k) => ({ type: 'ApiKey', id: k.id }) }),
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', { description: 'The first characters of the key, to tell keys apart.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the key last authenticated a request (to the minute).',
    }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    revoked: t.boolean({ resolve: (k) => k.revokedAt !== null }),
  }),
});

const CreateApiKeyPayload = builder.objectRef<{ apiKey: ApiKeyRow; secret: string }>('CreateApiKeyPayload').implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKey, resolve: (p) => p.apiKey }),
    secret: t.exposeString('secret', {
      description: 'The key, to send as "Authorization: Bearer <secret>". Shown this once: Parley keeps only its hash.',
    }),
  }),
});

builder.queryFields((t) => ({
  apiKeys: t.withAuth({ admin: true }).prismaConnection({
    type: 'ApiKey',
    cursor: 'id',
    maxSize: pageCap,
    description: 'The organization\u2019s API keys, newest first, revoked ones included (owners and admins).',
    resolve: (query, _root, _args, ctx) =>
      ctx.prisma.apiKey.findMany({ ...query, where: ctx.services.apiKeys.listWhere(ctx.viewer), orderBy: { id: 'desc' } }),
  }),
}));

builder.mutationFields((t) => ({
  createApiKey: t.withAuth({ admin: true }).field({
    type: CreateApiKeyPayload,
    description: 'A new API key for the host product\u2019s backend (owners and admins). Its secret is in this answer only.',
    args: { name: t.arg.string({ validate: nameText(100) }) },
    resolve: (_root, args, ctx) => ctx.services.apiKeys.create(ctx.viewer, args.name),
  }),
  revokeApiKey: t.withAuth({ admin: true }).prismaField({
    type: 'ApiKey',
    description: 'Revokes a key at once; requests with it are UNAUTHENTICATED from then on. Revoking it again changes nothing.',
    args: { id: t.arg.globalID({ for: ApiKey }) },
    resolve: (query, _root, args, ctx) => ctx.services.apiKeys.revoke(ctx.viewer, args.id.id, query),
  }),
}));
