import { dataloaderGetter } from '@pothos/plugin-dataloader';
import { z } from 'zod';
import type { Context } from './context.ts';
import type { Message as MessageRow } from '../generated/prisma/client.ts';
import { isId } from '../services/access.ts';
import { badInput } from '../services/errors.ts';
import { MAX_PINS_PER_CHANNEL, type PinCursor, type PinnedMessage, type PinWithUser } from '../services/pins.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { Message } from './message.ts';
import { keysetPage, pageCap } from './pagination.ts';
import { withSelection } from './selection.ts';
import { User } from './user.ts';

// Pins (issue 11 §4). Message.pinned, pinnedAt and pinnedBy share one loader:
// one query per request for all the messages asked about, resolved from the
// message id alone (live snapshots included).

const pinOf = dataloaderGetter<string, PinWithUser | null, Context>(
  undefined,
  (messageIds, ctx) => (ctx as Context).services.pins.pinsOf(messageIds),
  undefined,
  undefined,
);

builder.objectFields(Message, (t) => ({
  pinned: t.boolean({
    description: 'Whether the message is pinned in its channel.',
    resolve: async (m, _args, ctx) => (await pinOf(ctx).load(m.id)) !== null,
  }),
  pinnedAt: t.field({
    type: 'DateTime',
    nullable: true,
    resolve: async (m, _args, ctx) => (await pinOf(ctx).load(m.id))?.createdAt ?? null,
  }),
  pinnedBy: t.field({
    type: User,
    nullable: true,
    description: 'Who pinned the message; null when it is not pinned.',
    resolve: async (m, _args, ctx) => (await pinOf(ctx).load(m.id))?.pinnedBy ?? null,
  }),
}));

const PinnedMessageConnection = builder.connectionObject({ type: Message, name: 'PinnedMessageConnection' }, { name: 'PinnedMessageEdge' });

const CURSOR_PREFIX = 'pin:';

const encodeCursor = (p: PinnedMessage) => Buffer.from(`${CURSOR_PREFIX}${p.pinnedAt.getTime()}:${p.message.id}`).toString('base64url');

/** A pinnedMessages cursor names a pin (its time and message); anything else is refused rather than read as the start. */
function decodeCursor(after: string | null | undefined): PinCursor | null {
  if (after == null) return null;
  const text = Buffer.from(after, 'base64url').toString();
  const match = /^pin:(\d{1,15}):(.+)$/.exec(text);
  if (!match || !isId(match[2]!)) throw badInput('after', 'after is not a cursor of pinnedMessages');
  return { pinnedAt: new Date(Number(match[1])), messageId: match[2]! };
}

const page = (pins: PinnedMessage[], first: number) => keysetPage(pins, first, encodeCursor, (p) => p.message as MessageRow);

builder.objectField(Channel, 'pinnedMessages', (t) =>
  t.loadable({
    type: PinnedMessageConnection,
    description:
      `Pinned messages, newest pin first (at most ${MAX_PINS_PER_CHANNEL} per channel). ` +
      'Deleted messages only for organization admins.',
    args: {
      first: t.arg.int({ required: false, validate: z.number().int().min(0) }),
      after: t.arg.string({ required: false }),
    },
    byPath: true,
    load: async (channelIds: string[], ctx, args) => {
      pageCap(args, ctx);
      const first = args.first ?? 20;
      if (!ctx.viewer) return channelIds.map(() => page([], first));
      const pages = await ctx.services.pins.pages(ctx.viewer, channelIds, first + 1, decodeCursor(args.after));
      return pages.map((pins) => page(pins, first));
    },
    resolve: (channel) => channel.id,
  }),
);

const describeWho =
  'Organization staff and the channel\u2019s owners and admins; members who may post too when the channel\u2019s ' +
  'membersMayPin is true, and both sides of a direct conversation.';

builder.mutationFields((t) => ({
  pinMessage: t.withAuth({ authenticated: true }).prismaField({
    type: 'Message',
    description:
      `Pins a message in its channel; pinning a pinned message changes nothing. ${describeWho} ` +
      `A deleted message, or a channel with ${MAX_PINS_PER_CHANNEL} pins already, is CONFLICT.`,
    args: { messageId: t.arg.globalID({ for: Message }) },
    resolve: async (query, _root, args, ctx) => {
      const message = await ctx.services.pins.pin(ctx.viewer, args.messageId.id);
      return withSelection(query, message, (q) => ctx.prisma.message.findUniqueOrThrow({ ...q, where: { id: message.id } }));
    },
  }),
  unpinMessage: t.withAuth({ authenticated: true }).prismaField({
    type: 'Message',
    description: `Unpins a message (a deleted one too); unpinning a message that is not pinned changes nothing. ${describeWho}`,
    args: { messageId: t.arg.globalID({ for: Message }) },
    resolve: async (query, _root, args, ctx) => {
      const message = await ctx.services.pins.unpin(ctx.viewer, args.messageId.id);
      return withSelection(query, message, (q) => ctx.prisma.message.findUniqueOrThrow({ ...q, where: { id: message.id } }));
    },
  }),
}));
