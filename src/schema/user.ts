import { z } from 'zod';
import type { Context } from './context.ts';
import type { Prisma, User as UserRow } from '../generated/prisma/client.ts';
import { mayReadEmail } from '../services/access.ts';
import type { AuthPayload as AuthResult } from '../services/auth.ts';
import { Role as RoleValues } from '../generated/prisma/enums.ts';
import { builder } from './builder.ts';
import { pageCap } from './pagination.ts';
import { markCurrentSession, Session } from './session.ts';
import { nameText } from './text.ts';

/**
 * A `t.loadable` loader of users by id: the users the viewer may see, in one
 * query per request however many fields ask, and null for the others (and
 * for everyone when signed out).
 */
export async function loadVisibleUsers(ids: string[], ctx: Context): Promise<(UserRow | null)[]> {
  const rows = ctx.viewer
    ? await ctx.prisma.user.findMany({ where: { id: { in: ids }, ...ctx.services.users.visibleWhere(ctx.viewer) } })
    : [];
  const byId = new Map(rows.map((u) => [u.id, u]));
  return ids.map((id) => byId.get(id) ?? null);
}

export const Role = builder.enumType(RoleValues, { name: 'Role' });

const slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, 'lowercase letters, digits and inner dashes, 1 to 40 characters');
const username = z.string().regex(/^[a-zA-Z0-9._-]{2,40}$/, '2 to 40 letters, digits, dots, dashes or underscores');
const displayName = nameText(80);
const password = z.string().min(8, 'at least 8 characters').max(200);
// A plain String checked here rather than the EmailAddress scalar, so a bad
// address is a BAD_USER_INPUT naming the field like every other input rule.
const email = z.email('a valid email address').max(254);

// Operations that just signed a user in (login, registerOrganization,
// refreshSession) carry no token yet; the user in their payload may still read
// their own contact data, and the session they started is the current one.
const signedIn = new WeakMap<Context, string>();

function signIn(ctx: Context, result: AuthResult): AuthResult {
  signedIn.set(ctx, result.user.id);
  markCurrentSession(ctx, result.session.id);
  return result;
}

// Email is contact data (access.ts mayReadEmail); the login that just signed
// the user in reads its own user before ctx.viewer is set.
function emailVisible(ctx: Context, userId: string): boolean {
  if (signedIn.get(ctx) === userId) return true;
  return ctx.viewer !== null && mayReadEmail(ctx.viewer, userId);
}

// Mutations write through a service, then read the row back with the selection
// Pothos built for the response (DESIGN §3.3), so its relations load in one query.
const reloadUser = (ctx: Context, query: { select?: Prisma.UserSelect; include?: Prisma.UserInclude }, user: { id: string }) =>
  ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });

builder.prismaObject('Organization', {
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    slug: t.exposeString('slug'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const User = builder.prismaNode('User', {
  id: { field: 'id' },
  fields: (t) => ({
    username: t.exposeString('username'),
    displayName: t.exposeString('displayName'),
    email: t.string({
      nullable: true,
      description: 'Visible to the user themself and to staff; null for everyone else.',
      select: { id: true, email: true },
      resolve: (user, _args, ctx) => (emailVisible(ctx, user.id) ? user.email : null),
    }),
    role: t.expose('role', { type: Role }),
    deactivated: t.boolean({ select: { deactivatedAt: true }, resolve: (user) => user.deactivatedAt !== null }),
    erased: t.boolean({
      description: 'Whether the user’s personal data was erased (eraseUser): the profile is anonymized and the user cannot sign in again.',
      select: { erasedAt: true },
      resolve: (user) => user.erasedAt !== null,
    }),
    organization: t.relation('organization'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const AuthPayload = builder.objectRef<AuthResult>('AuthPayload').implement({
  fields: (t) => ({
    token: t.exposeString('token', {
      description:
        'The access token: send as "Authorization: Bearer <token>" or as graphql-ws connectionParams.authToken. Short-lived (accessTokenExpiresAt): renew it with refreshSession.',
    }),
    accessTokenExpiresAt: t.expose('accessTokenExpiresAt', { type: 'DateTime', description: 'When `token` stops working.' }),
    refreshToken: t.exposeString('refreshToken', {
      description:
        'Trade it for new tokens with refreshSession, once: each refresh returns a new one. Using one a second time ends the session. Keep it secret; it is shown only here.',
    }),
    session: t.field({ type: Session, resolve: (parent) => parent.session }),
    user: t.field({ type: User, resolve: (parent) => parent.user }),
  }),
});

const RegisterOrganizationInput = builder.inputType('RegisterOrganizationInput', {
  fields: (t) => ({
    name: t.string({ validate: nameText(100) }),
    slug: t.string({ validate: slug }),
    username: t.string({ validate: username }),
    displayName: t.string({ validate: displayName }),
    email: t.string({ required: false, validate: email }),
    password: t.string({ validate: password }),
  }),
});

const CreateUserInput = builder.inputType('CreateUserInput', {
  fields: (t) => ({
    username: t.string({ validate: username }),
    displayName: t.string({ validate: displayName }),
    email: t.string({ required: false, validate: email }),
    role: t.field({ type: Role }),
    password: t.string({ validate: password }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.withAuth({ authenticated: true }).prismaField({
    type: 'User',
    description: 'The signed-in user.',
    resolve: (query, _root, _args, ctx) => ctx.services.users.get(ctx.viewer, ctx.viewer.id, query),
  }),
  user: t.withAuth({ authenticated: true }).prismaField({
    type: 'User',
    args: { id: t.arg.globalID({ for: User }) },
    resolve: (query, _root, args, ctx) => ctx.services.users.get(ctx.viewer, args.id.id, query),
  }),
  users: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'User',
    cursor: 'id',
    maxSize: pageCap,
    description: "The organization's users. Clients see only themselves.",
    resolve: (query, _root, _args, ctx) =>
      ctx.prisma.user.findMany({ ...query, where: ctx.services.users.listWhere(ctx.viewer), orderBy: { id: 'asc' } }),
  }),
}));

builder.mutationFields((t) => ({
  registerOrganization: t.field({
    skipTypeScopes: true,
    type: AuthPayload,
    description: 'Creates an organization and its owner, and signs the owner in.',
    args: { input: t.arg({ type: RegisterOrganizationInput }) },
    resolve: async (_root, { input }, ctx) => signIn(ctx, await ctx.services.auth.registerOrganization(input, ctx.client)),
  }),
  login: t.field({
    skipTypeScopes: true,
    type: AuthPayload,
    args: {
      organization: t.arg.string({ description: 'The organization slug', validate: z.string().max(100) }),
      username: t.arg.string({ validate: z.string().max(100) }),
      password: t.arg.string({ validate: z.string().max(200) }),
    },
    resolve: async (_root, args, ctx) =>
      signIn(ctx, await ctx.services.auth.login(args.organization, args.username, args.password, ctx.client)),
  }),
  refreshSession: t.field({
    skipTypeScopes: true,
    type: AuthPayload,
    description:
      'New tokens for a refresh token (no access token needed). The refresh token works once: a second use, even concurrent, ends the whole session (UNAUTHENTICATED, as for an unknown, expired or ended one).',
    args: { refreshToken: t.arg.string({ validate: z.string().max(200) }) },
    resolve: async (_root, args, ctx) => signIn(ctx, await ctx.services.auth.refresh(args.refreshToken, ctx.client)),
  }),
  changePassword: t.withAuth({ authenticated: true }).int({
    description:
      'Changes the viewer’s password and ends their other sessions (this one stays). A wrong current password is BAD_USER_INPUT on currentPassword. Returns how many sessions it ended.',
    args: {
      currentPassword: t.arg.string({ validate: z.string().max(200) }),
      newPassword: t.arg.string({ validate: password }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.auth.changePassword(ctx.viewer, ctx.sessionId, args.currentPassword, args.newPassword, ctx.client.ip),
  }),
  createUser: t.withAuth({ admin: true }).prismaField({
    type: 'User',
    args: { input: t.arg({ type: CreateUserInput }) },
    resolve: async (query, _root, { input }, ctx) => reloadUser(ctx, query, await ctx.services.users.create(ctx.viewer, input)),
  }),
  changeUserRole: t.withAuth({ admin: true }).prismaField({
    type: 'User',
    args: { userId: t.arg.globalID({ for: User }), role: t.arg({ type: Role }) },
    resolve: async (query, _root, args, ctx) =>
      reloadUser(ctx, query, await ctx.services.users.changeRole(ctx.viewer, args.userId.id, args.role)),
  }),
  deactivateUser: t.withAuth({ admin: true }).prismaField({
    type: 'User',
    description: "Blocks sign-in; the user's tokens stop working at once and their sessions end.",
    args: { userId: t.arg.globalID({ for: User }) },
    resolve: async (query, _root, args, ctx) =>
      reloadUser(ctx, query, await ctx.services.users.setActive(ctx.viewer, args.userId.id, false)),
  }),
  reactivateUser: t.withAuth({ admin: true }).prismaField({
    type: 'User',
    args: { userId: t.arg.globalID({ for: User }) },
    resolve: async (query, _root, args, ctx) =>
      reloadUser(ctx, query, await ctx.services.users.setActive(ctx.viewer, args.userId.id, true)),
  }),
  eraseUser: t.withAuth({ admin: true }).prismaField({
    type: 'User',
    description:
      "Erases the user's personal data (GDPR art. 17; owners and admins, only owners erase owners, never oneself): the profile is anonymized, sign-in is impossible for good, sessions end, and their messages are deleted or kept per the organization's erasureMessagePolicy. Erasing an erased user returns them unchanged.",
    args: { userId: t.arg.globalID({ for: User }) },
    resolve: async (query, _root, args, ctx) => reloadUser(ctx, query, await ctx.services.erasure.erase(ctx.viewer, args.userId.id)),
  }),
}));
