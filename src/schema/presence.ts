import { z } from 'zod';
import type { PresenceState } from '../services/live/presence.ts';
import { sharedEvents } from './shared-events.ts';
import { builder } from './builder.ts';
import { User } from './user.ts';

const PresenceStatus = builder.enumType('PresenceStatus', { values: ['ONLINE', 'AWAY', 'BUSY', 'OFFLINE'] as const });
const ChosenStatus = builder.enumType('ChosenPresenceStatus', {
  description: 'What a connected user may show: OFFLINE follows from having no socket open.',
  values: ['ONLINE', 'AWAY', 'BUSY'] as const,
});

const Presence = builder.objectRef<PresenceState>('Presence').implement({
  description: 'Whether a user is connected (best effort, not in the channel log).',
  fields: (t) => ({
    userId: t.globalID({ resolve: (p) => ({ type: 'User', id: p.userId }) }),
    status: t.field({ type: PresenceStatus, resolve: (p) => p.status }),
    lastSeenAt: t.field({ type: 'DateTime', nullable: true, description: 'When their last socket closed.', resolve: (p) => p.lastSeenAt }),
  }),
});

const userIds = () => z.array(z.unknown()).min(1).max(100);

builder.queryField('presence', (t) =>
  t.withAuth({ authenticated: true }).field({
    type: [Presence],
    description: 'Presence of users of the viewer\u2019s organization, in the order asked.',
    args: { userIds: t.arg.globalIDList({ for: User, validate: userIds() }) },
    resolve: async (_root, args, ctx) =>
      ctx.services.presence.states(
        await ctx.services.users.visibleIds(
          ctx.viewer,
          args.userIds.map((u) => u.id),
        ),
      ),
  }),
);

builder.subscriptionField('presence', (t) =>
  t.withAuth({ authenticated: true }).field({
    type: Presence,
    description: 'The users\u2019 presence now, then every change (including users whose server process died).',
    args: { userIds: t.arg.globalIDList({ for: User, validate: userIds() }) },
    extensions: sharedEvents,
    subscribe: async (_root, args, ctx) =>
      ctx.services.presence.stream(
        await ctx.services.users.visibleIds(
          ctx.viewer,
          args.userIds.map((u) => u.id),
        ),
      ),
    resolve: (state: PresenceState) => state,
  }),
);

builder.mutationField('setPresence', (t) =>
  t.withAuth({ authenticated: true }).field({
    type: Presence,
    description: 'Shows the viewer as ONLINE, AWAY or BUSY while they are connected.',
    args: { status: t.arg({ type: ChosenStatus }) },
    resolve: (_root, args, ctx) => ctx.services.presence.setStatus(ctx.viewer.id, args.status),
  }),
);
