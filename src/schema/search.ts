import { z } from 'zod';
import type {
  ClientRequest as ClientRequestRow,
  Message as MessageRow,
  SupportTicket as SupportTicketRow,
} from '../generated/prisma/client.ts';
import type { Highlight, Hit, Hits } from '../services/search.ts';
import { SEARCH_QUERY_MAX } from '../services/search.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { ClientRequest } from './client-request.ts';
import { Message } from './message.ts';
import type { Context } from './context.ts';
import { pageCap } from './pagination.ts';
import { SupportTicket } from './support-ticket.ts';
import { User } from './user.ts';

const SearchHighlight = builder.objectRef<Highlight>('SearchHighlight').implement({
  description:
    'Where a hit matched the query: [start, end) offsets, in UTF-16 code units (as JavaScript indexes strings), into one field of the hit. ' +
    'Offsets, not markup: render them with your own escaping.',
  fields: (t) => ({
    field: t.exposeString('field', { description: 'body (messages); title or description (requests); subject (tickets).' }),
    start: t.exposeInt('start'),
    end: t.exposeInt('end', { description: 'Exclusive.' }),
  }),
});

const MessageSearchHit = builder.objectRef<Hit<MessageRow>>('MessageSearchHit').implement({
  description: 'A message that matched, with where it matched. Its channel, thread (parent) and sender are on the message.',
  fields: (t) => ({
    message: t.field({ type: Message, resolve: (hit) => hit.node }),
    score: t.exposeFloat('score', { description: 'Relevance with recency: what results are ordered by, highest first.' }),
    highlights: t.field({ type: [SearchHighlight], resolve: (hit) => hit.highlights }),
  }),
});

const ClientRequestSearchHit = builder.objectRef<Hit<ClientRequestRow>>('ClientRequestSearchHit').implement({
  description: 'A client request whose title or description matched.',
  fields: (t) => ({
    clientRequest: t.field({ type: ClientRequest, resolve: (hit) => hit.node }),
    score: t.exposeFloat('score'),
    highlights: t.field({ type: [SearchHighlight], resolve: (hit) => hit.highlights }),
  }),
});

const SupportTicketSearchHit = builder.objectRef<Hit<SupportTicketRow>>('SupportTicketSearchHit').implement({
  description: 'A support ticket whose subject matched.',
  fields: (t) => ({
    supportTicket: t.field({ type: SupportTicket, resolve: (hit) => hit.node }),
    score: t.exposeFloat('score'),
    highlights: t.field({ type: [SearchHighlight], resolve: (hit) => hit.highlights }),
  }),
});

const MessageSearchConnection = builder.connectionObject(
  { type: MessageSearchHit, name: 'MessageSearchConnection' },
  { name: 'MessageSearchEdge' },
);
const ClientRequestSearchConnection = builder.connectionObject(
  { type: ClientRequestSearchHit, name: 'ClientRequestSearchConnection' },
  { name: 'ClientRequestSearchEdge' },
);
const SupportTicketSearchConnection = builder.connectionObject(
  { type: SupportTicketSearchHit, name: 'SupportTicketSearchConnection' },
  { name: 'SupportTicketSearchEdge' },
);

const EntityRefInput = builder.inputType('EntityRefInput', {
  fields: (t) => ({
    type: t.string({ description: 'The type key, as written after @.', validate: z.string().min(1).max(64) }),
    externalId: t.string({ description: 'The external id, as written after #.', validate: z.string().min(1).max(200) }),
  }),
});

const MessageSearchFilter = builder.inputType('MessageSearchFilter', {
  description: 'Narrows a message search; conditions add up (AND).',
  fields: (t) => ({
    channelIds: t.globalIDList({ for: Channel, required: false, description: 'Only these channels (those the viewer may read).' }),
    senderId: t.globalID({ for: User, required: false }),
    from: t.field({ type: 'DateTime', required: false, description: 'Sent at or after this instant.' }),
    to: t.field({ type: 'DateTime', required: false, description: 'Sent before this instant.' }),
    threadId: t.globalID({ for: Message, required: false, description: 'Only this thread: its root message and the replies to it.' }),
    inThread: t.boolean({ required: false, description: 'true: only replies in threads; false: only messages that are not replies.' }),
    hasAttachments: t.boolean({ required: false }),
    mentionsMe: t.boolean({ required: false, description: 'true: only messages that mention the viewer (@name, @channel, @here).' }),
    linksEntity: t.field({ type: EntityRefInput, required: false, description: 'Only messages that link @type#externalId.' }),
  }),
});

const pageArgs = (t: Parameters<Parameters<typeof builder.queryFields>[0]>[0]) => ({
  query: t.arg.string({
    description:
      `Web-search syntax: words (all must match, stemmed in the organization\u2019s search language, accents ignored), "exact phrase", ` +
      `-excluded, a or b. The last word also matches as a prefix while it is typed. At most ${SEARCH_QUERY_MAX} characters.`,
  }),
  first: t.arg.int({ required: false, validate: z.number().int().min(0) }),
  after: t.arg.string({ required: false }),
});

const connectionOf = <T>(result: Hits<T>) => ({
  edges: result.hits.map((hit) => ({ cursor: hit.cursor, node: hit })),
  pageInfo: {
    hasNextPage: result.hasNextPage,
    hasPreviousPage: false,
    startCursor: result.hits[0]?.cursor ?? null,
    endCursor: result.hits.at(-1)?.cursor ?? null,
  },
});

const size = (args: { first?: number | null }, ctx: Context) => {
  pageCap(args, ctx);
  return args.first ?? 20;
};

builder.queryFields((t) => ({
  search: t.withAuth({ authenticated: true }).field({
    type: MessageSearchConnection,
    description:
      'Full-text search over the messages the viewer may read now (not deleted), best first: relevance with recency. ' +
      'Requests and tickets: searchClientRequests, searchSupportTickets.',
    args: { ...pageArgs(t), filter: t.arg({ type: MessageSearchFilter, required: false }) },
    resolve: async (_root, args, ctx) => {
      const f = args.filter;
      const result = await ctx.services.search.messages(
        ctx.viewer,
        args.query,
        {
          channelIds: f?.channelIds?.map((id) => id.id) ?? null,
          senderId: f?.senderId?.id ?? null,
          from: f?.from ?? null,
          to: f?.to ?? null,
          threadId: f?.threadId?.id ?? null,
          inThread: f?.inThread ?? null,
          hasAttachments: f?.hasAttachments ?? null,
          mentionsMe: f?.mentionsMe ?? null,
          linksEntity: f?.linksEntity ? { type: f.linksEntity.type.toLowerCase(), externalId: f.linksEntity.externalId } : null,
        },
        { first: size(args, ctx), after: args.after },
      );
      return connectionOf(result);
    },
  }),
  searchClientRequests: t.withAuth({ authenticated: true }).field({
    type: ClientRequestSearchConnection,
    description: 'Full-text search over the client requests the viewer may read (title and description), best first.',
    args: pageArgs(t),
    resolve: async (_root, args, ctx) =>
      connectionOf(await ctx.services.search.clientRequests(ctx.viewer, args.query, { first: size(args, ctx), after: args.after })),
  }),
  searchSupportTickets: t.withAuth({ authenticated: true }).field({
    type: SupportTicketSearchConnection,
    description: 'Full-text search over the support tickets the viewer may read (their subjects), best first.',
    args: pageArgs(t),
    resolve: async (_root, args, ctx) =>
      connectionOf(await ctx.services.search.supportTickets(ctx.viewer, args.query, { first: size(args, ctx), after: args.after })),
  }),
}));
