import type { Context } from './context.ts';
import { builder } from './builder.ts';
import { pageCap } from './pagination.ts';

// Sessions (services/sessions.ts): each sign-in is one, listed and ended by its
// own user only. Signing in and refreshing are in user.ts, beside AuthPayload.

// Operations that just signed in or refreshed (login, registerOrganization,
// refreshSession) have no session in their context yet; the one they
// started is the current one.
const startedSessions = new WeakMap<Context, string>();

/** Marks `sessionId` as the current session of an operation that just started or refreshed it. */
export function markCurrentSession(ctx: Context, sessionId: string): void {
  startedSessions.set(ctx, sessionId);
}

export const Session = builder.prismaObject('Session', {
  description: 'A sign-in on one device: its access tokens name it, its refresh tokens continue it.',
  fields: (t) => ({
    id: t.globalID({ resolve: (session) => ({ type: 'Session', id: session.id }) }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the user signed in.' }),
    lastSeenAt: t.expose('lastSeenAt', { type: 'DateTime', description: 'When a request last used it (to the minute).' }),
    expiresAt: t.expose('expiresAt', {
      type: 'DateTime',
      description: 'When it ends unless refreshed first; each refresh moves it ahead, up to a maximum age.',
    }),
    userAgent: t.exposeString('userAgent', { nullable: true, description: 'The client’s user agent at sign-in or the last refresh.' }),
    ip: t.exposeString('ip', { nullable: true, description: 'The client’s address at sign-in or the last refresh.' }),
    current: t.boolean({
      description: 'True for the session of the access token this request carries.',
      resolve: (session, _args, ctx) => session.id === (startedSessions.get(ctx) ?? ctx.sessionId),
    }),
  }),
});

builder.queryFields((t) => ({
  sessions: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'Session',
    cursor: 'id',
    maxSize: pageCap,
    description: 'The viewer’s sessions that still work, newest first.',
    resolve: (query, _root, _args, ctx) =>
      ctx.prisma.session.findMany({ ...query, where: ctx.services.sessions.activeWhere(ctx.viewer), orderBy: { id: 'desc' } }),
  }),
}));

builder.mutationFields((t) => ({
  logout: t.withAuth({ authenticated: true }).boolean({
    description: 'Ends the current session (the one the access token names): its access and refresh tokens stop working.',
    resolve: (_root, _args, ctx) => ctx.services.sessions.logout(ctx.viewer, ctx.sessionId),
  }),
  logoutEverywhere: t.withAuth({ authenticated: true }).int({
    description: 'Ends every session of the viewer, the current one included. Returns how many it ended.',
    resolve: (_root, _args, ctx) => ctx.services.sessions.logoutEverywhere(ctx.viewer),
  }),
  revokeSession: t.withAuth({ authenticated: true }).boolean({
    description:
      'Ends one of the viewer’s own sessions (from `sessions`); its sockets close. False when it had ended already. Anyone else’s is NOT_FOUND.',
    args: { id: t.arg.globalID({ for: Session }) },
    resolve: (_root, args, ctx) => ctx.services.sessions.revoke(ctx.viewer, args.id.id),
  }),
}));
