import { z } from 'zod';
import { ProjectRole as ProjectRoleValues } from '../generated/prisma/enums.ts';
import { builder } from './builder.ts';
import { pageCap } from './pagination.ts';
import { User } from './user.ts';
import { nameText } from './text.ts';

const ProjectRole = builder.enumType(ProjectRoleValues, { name: 'ProjectRole' });

export const Project = builder.prismaNode('Project', {
  id: { field: 'id' },
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    archived: t.boolean({ select: { archivedAt: true }, resolve: (p) => p.archivedAt !== null }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    access: t.withAuth({ staff: true }).relatedConnection('access', {
      cursor: 'id',
      maxSize: pageCap,
      description: 'Who outside the staff may enter this project (staff only).',
      query: { orderBy: { id: 'asc' } },
    }),
  }),
});

builder.prismaNode('ProjectAccess', {
  id: { field: 'id' },
  fields: (t) => ({
    project: t.relation('project'),
    user: t.relation('user'),
    role: t.expose('role', { type: ProjectRole }),
    canComment: t.exposeBoolean('canComment'),
    canCreateTasks: t.exposeBoolean('canCreateTasks'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const CreateProjectInput = builder.inputType('CreateProjectInput', {
  fields: (t) => ({
    name: t.string({ validate: nameText(100) }),
    description: t.string({ required: false, validate: z.string().max(2000) }),
  }),
});

const GrantProjectAccessInput = builder.inputType('GrantProjectAccessInput', {
  fields: (t) => ({
    projectId: t.globalID({ for: Project }),
    userId: t.globalID({ for: User }),
    role: t.field({ type: ProjectRole }),
    canComment: t.boolean({ required: false, description: 'Defaults to true, false for VIEWER.' }),
    canCreateTasks: t.boolean({ required: false, description: 'Defaults to false.' }),
  }),
});

builder.queryFields((t) => ({
  projects: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'Project',
    cursor: 'id',
    maxSize: pageCap,
    description: "Projects the viewer can see: all of the organization's for staff and members, granted ones for clients.",
    resolve: (query, _root, _args, ctx) =>
      ctx.prisma.project.findMany({ ...query, where: ctx.services.projects.visibleWhere(ctx.viewer), orderBy: { id: 'asc' } }),
  }),
  project: t.withAuth({ authenticated: true }).prismaField({
    type: 'Project',
    args: { id: t.arg.globalID({ for: Project }) },
    resolve: (query, _root, args, ctx) => ctx.services.projects.get(ctx.viewer, args.id.id, query),
  }),
}));

builder.mutationFields((t) => ({
  createProject: t.withAuth({ staff: true }).prismaField({
    type: 'Project',
    args: { input: t.arg({ type: CreateProjectInput }) },
    // Read back with the response's selection (DESIGN §3.3) so relations load in the same query.
    resolve: async (query, _root, { input }, ctx) => {
      const project = await ctx.services.projects.create(ctx.viewer, input);
      return ctx.prisma.project.findUniqueOrThrow({ ...query, where: { id: project.id } });
    },
  }),
  grantProjectAccess: t.withAuth({ staff: true }).prismaField({
    type: 'ProjectAccess',
    description: 'Grants or updates a user\u2019s access to a project.',
    args: { input: t.arg({ type: GrantProjectAccessInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const access = await ctx.services.projects.grant(ctx.viewer, { ...input, projectId: input.projectId.id, userId: input.userId.id });
      return ctx.prisma.projectAccess.findUniqueOrThrow({ ...query, where: { id: access.id } });
    },
  }),
  revokeProjectAccess: t.withAuth({ staff: true }).boolean({
    description: 'Removes the grant; an external user also leaves the project\u2019s channels.',
    args: { projectId: t.arg.globalID({ for: Project }), userId: t.arg.globalID({ for: User }) },
    resolve: (_root, args, ctx) => ctx.services.projects.revoke(ctx.viewer, args.projectId.id, args.userId.id),
  }),
}));
