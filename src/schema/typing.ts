import { isTypingError, type TypingItem, type TypingPayload } from '../services/live/typing.ts';
import { sharedEvents } from './shared-events.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';

// Typing events resolve every field from the published payload: delivering
// one to N subscribers runs no query (DESIGN §3.8).

const TypingUser = builder.objectRef<TypingPayload>('TypingUser').implement({
  description: 'The typing user as the event carries it: no lookup per subscriber.',
  fields: (t) => ({
    id: t.globalID({ resolve: (e) => ({ type: 'User', id: e.userId }) }),
    displayName: t.exposeString('displayName'),
  }),
});

const TypingEvent = builder.objectRef<TypingPayload>('TypingEvent').implement({
  description: 'A member started or stopped typing. Ephemeral: not in the channel log, and may be dropped.',
  fields: (t) => ({
    channelId: t.globalID({ resolve: (e) => ({ type: 'Channel', id: e.channelId }) }),
    userId: t.globalID({ resolve: (e) => ({ type: 'User', id: e.userId }) }),
    user: t.field({ type: TypingUser, resolve: (e) => e }),
    typing: t.exposeBoolean('typing'),
    expiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When this typing state lapses unless refreshed (a `typing: false` follows then); null for a stop.',
      resolve: (e) => e.expiresAt,
    }),
  }),
});

builder.mutationField('setTyping', (t) =>
  t.withAuth({ authenticated: true }).boolean({
    description:
      'Shows the viewer as typing in the channel for about 6 s, or stops it. Call it again while typing: ' +
      'at most one call per 2 s is broadcast, and the answer says whether this one was. A stop is always broadcast.',
    args: { channelId: t.arg.globalID({ for: Channel }), typing: t.arg.boolean() },
    resolve: (_root, args, ctx) => ctx.services.typing.set(ctx.viewer, args.channelId.id, args.typing),
  }),
);

builder.subscriptionField('typing', (t) =>
  t.withAuth({ authenticated: true }).field({
    type: TypingEvent,
    description:
      'Other members starting and stopping to type in the channel. A state not refreshed in time ends with ' +
      '`typing: false`. Ends with FORBIDDEN once the viewer is removed from the channel.',
    args: { channelId: t.arg.globalID({ for: Channel }) },
    extensions: sharedEvents,
    subscribe: (_root, args, ctx) => ctx.services.typing.stream(ctx.viewer, args.channelId.id),
    resolve: (item: TypingItem) => {
      if (isTypingError(item)) throw item.error;
      return item;
    },
  }),
);
