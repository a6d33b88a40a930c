import { decodeGlobalID } from '@pothos/plugin-relay';
import { z } from 'zod';
import { isId } from '../services/access.ts';
import { DomainError } from '../services/errors.ts';
import { ENTITY_BATCH_MAX, type MessageLinkView, type ResolvedLink } from '../services/entity-links.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { Message } from './message.ts';
import { pageCap } from './pagination.ts';
import { Project } from './project.ts';

// Entity links (services/entity-links.ts): entity types (admins), linked
// entities (integration operations, with an organization API key), and how a
// reader sees `@type#id` in a body: Message.links, linkedEntity, linkedMessages.

export const EntityType = builder.prismaObject('EntityType', {
  description: 'A kind of the host product\u2019s objects that messages link as @key#id.',
  fields: (t) => ({
    id: t.globalID({ resolve: (e) => ({ type: 'EntityType', id: e.id }) }),
    key: t.exposeString('key', { description: 'As written after @: lower-case letters, digits and underscores.' }),
    displayName: t.exposeString('displayName'),
    urlTemplate: t.exposeString('urlTemplate', {
      nullable: true,
      description: 'e.g. https://erp.example.com/tasks/{id}; {id} is replaced by the URL-encoded external id.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

// What a link says, shared by a resolved reference and its occurrences in a body.
const EntityReference = builder.interfaceRef<ResolvedLink>('EntityReference').implement({
  description: 'An entity reference (@type#id) as the viewer sees it.',
  fields: (t) => ({
    type: t.exposeString('type', { description: 'The type key, as written after @.' }),
    id: t.exposeString('externalId', { description: 'The external id, as written after #.' }),
    typeName: t.exposeString('typeName', { description: 'The type\u2019s display name.' }),
    label: t.exposeString('label', { description: 'e.g. "Task #45: Paint main bedroom walls", as it is now.' }),
    url: t.exposeString('url', { nullable: true, description: 'Where the host product shows it; null for built-in types.' }),
    nodeId: t.globalID({
      nullable: true,
      description: 'A built-in type\u2019s object (SupportTicket, ClientRequest, ChangeOrder, Message); null for host entities.',
      resolve: (l) => l.node,
    }),
  }),
});

const EntityLink = builder.objectRef<ResolvedLink>('EntityLink').implement({
  description: 'An entity reference (@type#id) as the viewer sees it.',
  interfaces: [EntityReference],
});

const MessageLink = builder.objectRef<MessageLinkView>('MessageLink').implement({
  description: 'One occurrence of an entity link in a message body that the viewer may see.',
  interfaces: [EntityReference],
  fields: (t) => ({
    start: t.exposeInt('start', { description: 'Where the token (with its @) starts in the body, in UTF-16 code units.' }),
    end: t.exposeInt('end', { description: 'Where it ends (exclusive).' }),
  }),
});

builder.objectFields(Message, (t) => ({
  links: t.loadableList({
    type: MessageLink,
    description:
      'The @type#id links in the body the viewer may see, one per occurrence in body order, with their labels as they are now. ' +
      'A reference to an unknown or invisible entity is not listed. Empty for a deleted message, except for organization admins.',
    load: (messageIds: string[], ctx) =>
      ctx.viewer ? ctx.services.entityLinks.linksOf(ctx.viewer, messageIds) : Promise.resolve(messageIds.map(() => [])),
    resolve: (message) => message.id,
  }),
}));

const EntityTypeInput = builder.inputType('CreateEntityTypeInput', {
  fields: (t) => ({
    key: t.string({ description: 'Lower-case letters, digits and underscores, starting with a letter; at most 40.' }),
    displayName: t.string(),
    urlTemplate: t.string({ required: false, description: 'An absolute http(s) URL containing {id}.' }),
  }),
});

const UpdateEntityTypeInput = builder.inputType('UpdateEntityTypeInput', {
  fields: (t) => ({
    id: t.globalID({ for: EntityType }),
    displayName: t.string({ required: false }),
    urlTemplate: t.string({ required: false, description: 'null removes it.' }),
  }),
});

const LinkedEntityInput = builder.inputType('LinkedEntityInput', {
  fields: (t) => ({
    type: t.string({ description: 'A registered entity type\u2019s key.' }),
    externalId: t.string({ description: 'The id messages write after #: letters, digits and . _ : - (at most 100).' }),
    label: t.string({ description: 'What a link shows, e.g. "Task #45: Paint main bedroom walls".' }),
    projectId: t.globalID({ for: Project, required: false, description: 'Only those who may see this project see the entity.' }),
    url: t.string({ required: false, description: 'Overrides the type\u2019s URL template.' }),
  }),
});

const LinkedEntityRefInput = builder.inputType('LinkedEntityRefInput', {
  fields: (t) => ({ type: t.string(), externalId: t.string() }),
});

const UpsertLinkedEntitiesPayload = builder.objectRef<{ count: number; changed: number }>('UpsertLinkedEntitiesPayload').implement({
  fields: (t) => ({
    count: t.exposeInt('count', { description: 'Entities in the call (after merging repeats of one entity).' }),
    changed: t.exposeInt('changed', { description: 'How many were created or changed; 0 when all were as given already.' }),
  }),
});

const refArgs = (t: Parameters<Parameters<typeof builder.queryFields>[0]>[0]) => ({
  type: t.arg.string({ description: 'The type key, as written after @.' }),
  id: t.arg.string({ description: 'The external id, as written after #.' }),
});

/** A channel's raw id from an argument that answers null, not an error, for one the viewer may not read (as node(id) does). */
function channelIdOrNull(globalId: string | number | null | undefined): string | null {
  if (globalId == null) return null;
  try {
    const { typename, id } = decodeGlobalID(String(globalId));
    return typename === 'Channel' && isId(id) ? id : null;
  } catch {
    return null;
  }
}

builder.queryFields((t) => ({
  entityTypes: t.withAuth({ authenticated: true }).field({
    type: [EntityType],
    description: 'The organization\u2019s entity types, by key (the built-in ticket, request, change_order and message are not listed).',
    resolve: (_root, _args, ctx) => ctx.services.entityLinks.listTypes(ctx.viewer),
  }),
  linkedEntity: t.withAuth({ authenticated: true }).field({
    type: EntityLink,
    nullable: true,
    description:
      'What @type#id says for the viewer, written in `channelId`; null when it names nothing the viewer may see, whatever the ' +
      'reason (a channel the viewer may not read included).',
    args: {
      ...refArgs(t),
      channelId: t.arg.id({
        required: false,
        description: 'The channel it is written in: what `message` (by seq), `request` and `change_order` (by number in its project) mean.',
      }),
    },
    resolve: async (_root, args, ctx) => {
      const channelId = channelIdOrNull(args.channelId);
      if (args.channelId != null && channelId === null) return null;
      const resolved = await ctx.services.entityLinks
        .resolve(ctx.viewer, { type: args.type, externalId: args.id }, { channelId })
        .catch((error: unknown) => (error instanceof DomainError && error.code === 'NOT_FOUND' ? null : Promise.reject(error)));
      return resolved?.link ?? null;
    },
  }),
  linkedMessages: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'Message',
    cursor: 'id',
    maxSize: pageCap,
    description:
      'Messages the viewer can read (not deleted) that link @type#id, newest first. NOT_FOUND when the viewer may not see the ' +
      'entity, whatever the reason. For request and change_order give projectId (or channelId); for message, channelId.',
    args: {
      ...refArgs(t),
      channelId: t.arg.globalID({
        for: Channel,
        required: false,
        description: 'The channel it is written in: what `message` (by seq), `request` and `change_order` (by number in its project) mean.',
      }),
      projectId: t.arg.globalID({ for: Project, required: false, description: 'The project whose request or change order number it is.' }),
    },
    resolve: async (query, _root, args, ctx) => {
      const where = await ctx.services.entityLinks.linkedMessagesWhere(
        ctx.viewer,
        { type: args.type, externalId: args.id },
        { channelId: args.channelId?.id, projectId: args.projectId?.id },
      );
      return ctx.prisma.message.findMany({ ...query, where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    },
  }),
}));

builder.mutationFields((t) => ({
  createEntityType: t.withAuth({ admin: true }).field({
    type: EntityType,
    description: 'Registers a kind of the host product\u2019s objects (owners and admins). CONFLICT when the key exists.',
    args: { input: t.arg({ type: EntityTypeInput }) },
    resolve: (_root, { input }, ctx) => ctx.services.entityLinks.createType(ctx.viewer, input),
  }),
  updateEntityType: t.withAuth({ admin: true }).field({
    type: EntityType,
    description: 'Changes a type\u2019s display name or URL template (owners and admins); the key stays.',
    args: { input: t.arg({ type: UpdateEntityTypeInput }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.entityLinks.updateType(ctx.viewer, input.id.id, { displayName: input.displayName, urlTemplate: input.urlTemplate }),
  }),
  deleteEntityType: t.withAuth({ admin: true }).globalID({
    description: 'Deletes a type and its entities (owners and admins); links to them become plain text. Returns its id.',
    args: { id: t.arg.globalID({ for: EntityType }) },
    resolve: async (_root, args, ctx) => ({ type: 'EntityType', id: await ctx.services.entityLinks.deleteType(ctx.viewer, args.id.id) }),
  }),
  // The Mutation type's own scope is for users: integration operations skip it.
  upsertLinkedEntities: t.withAuth({ integration: true }).field({
    skipTypeScopes: true,
    type: UpsertLinkedEntitiesPayload,
    description:
      `Creates or updates the host product\u2019s entities, at most ${ENTITY_BATCH_MAX} per call (integration operation: ` +
      'an organization API key). Idempotent.',
    args: { entities: t.arg({ type: [LinkedEntityInput], validate: z.array(z.unknown()).max(ENTITY_BATCH_MAX) }) },
    resolve: async (_root, { entities }, ctx) => {
      const input = entities.map((e) => ({ ...e, projectId: e.projectId?.id ?? null }));
      const changed = await ctx.services.entityLinks.upsertEntities(ctx.integration, input);
      return { count: new Set(input.map((e) => `${e.type}#${e.externalId}`)).size, changed };
    },
  }),
  deleteLinkedEntities: t.withAuth({ integration: true }).int({
    skipTypeScopes: true,
    description: `Deletes entities by reference, at most ${ENTITY_BATCH_MAX} per call (integration operation); returns how many existed.`,
    args: { refs: t.arg({ type: [LinkedEntityRefInput], validate: z.array(z.unknown()).max(ENTITY_BATCH_MAX) }) },
    resolve: (_root, { refs }, ctx) => ctx.services.entityLinks.deleteEntities(ctx.integration, refs),
  }),
}));
