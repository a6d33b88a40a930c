import { dataloaderGetter } from '@pothos/plugin-dataloader';
import { z } from 'zod';
import type { Context } from './context.ts';
import { MAX_DISTINCT_REACTIONS, MAX_REACTION_USERS, MAX_REACTIONS_PER_USER, type ReactionGroup } from '../services/reactions.ts';
import { builder } from './builder.ts';
import { Message } from './message.ts';
import { withSelection } from './selection.ts';
import { User } from './user.ts';

// Reactions (issue 11 §3). Message.reactions is batched over every message of
// a page and resolves from the message id alone, so it works for messages
// from live snapshots too (a hard-deleted one has none). Only
// `reactedByViewer` reads the viewer: a live event whose selection leaves it
// out is executed once for all subscribers.

/** The emoji the viewer reacted with, per message: one query per request for all messages asked about. */
const viewerEmoji = dataloaderGetter<string, string[], Context>(
  undefined,
  async (messageIds, context) => {
    const ctx = context as Context;
    return ctx.viewer ? ctx.services.reactions.emojiOf(ctx.viewer.id, messageIds) : messageIds.map(() => []);
  },
  undefined,
  undefined,
);

const DEFAULT_USERS = 3;

const ReactionGroupRef = builder.objectRef<ReactionGroup>('ReactionGroup').implement({
  description: 'One emoji\u2019s reactions on a message.',
  fields: (t) => ({
    emoji: t.exposeString('emoji', {
      description: 'The emoji, in Unicode\u2019s fully-qualified form (a shortcode is stored as its emoji).',
    }),
    count: t.exposeInt('count', { description: 'How many users reacted with it.' }),
    users: t.field({
      type: [User],
      description: `The first users who reacted with it, earliest first (${DEFAULT_USERS} unless \`first\` says, at most ${MAX_REACTION_USERS}).`,
      args: { first: t.arg.int({ required: false, validate: z.number().int().min(0).max(MAX_REACTION_USERS) }) },
      resolve: (group, args) => group.users.slice(0, args.first ?? DEFAULT_USERS),
    }),
    reactedByViewer: t.boolean({
      description: 'Whether the viewer is among those who reacted with it.',
      resolve: async (group, _args, ctx) => (await viewerEmoji(ctx).load(group.messageId)).includes(group.emoji),
    }),
  }),
});

builder.objectFields(Message, (t) => ({
  reactions: t.loadableList({
    type: ReactionGroupRef,
    description: 'Reactions grouped by emoji, in the order each emoji was first added. Empty for a message that is gone.',
    load: (messageIds: string[], ctx) => ctx.services.reactions.groups(messageIds),
    resolve: (message) => message.id,
  }),
}));

const emojiArg = `One emoji (a single grapheme: skin tones, ZWJ sequences and flags included; 👍 and 👍️ are the same) or a known shortcode such as ":thumbsup:" or "thumbsup".`;

builder.mutationFields((t) => ({
  addReaction: t.withAuth({ authenticated: true }).prismaField({
    type: 'Message',
    description:
      `Adds the viewer\u2019s reaction; adding one they already have changes nothing. Whoever may post in the channel may react. ` +
      `At most ${MAX_DISTINCT_REACTIONS} different emoji per message and ${MAX_REACTIONS_PER_USER} per user (CONFLICT beyond). ` +
      `A deleted message is CONFLICT.`,
    args: { messageId: t.arg.globalID({ for: Message }), emoji: t.arg.string({ description: emojiArg }) },
    resolve: async (query, _root, args, ctx) => {
      const message = await ctx.services.reactions.add(ctx.viewer, args.messageId.id, args.emoji);
      return withSelection(query, message, (q) => ctx.prisma.message.findUniqueOrThrow({ ...q, where: { id: message.id } }));
    },
  }),
  removeReaction: t.withAuth({ authenticated: true }).prismaField({
    type: 'Message',
    description: 'Removes the viewer\u2019s reaction; removing one they do not have changes nothing.',
    args: { messageId: t.arg.globalID({ for: Message }), emoji: t.arg.string({ description: emojiArg }) },
    resolve: async (query, _root, args, ctx) => {
      const message = await ctx.services.reactions.remove(ctx.viewer, args.messageId.id, args.emoji);
      return withSelection(query, message, (q) => ctx.prisma.message.findUniqueOrThrow({ ...q, where: { id: message.id } }));
    },
  }),
}));
