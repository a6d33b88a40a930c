import type { Viewer } from './viewer.ts';
import type { Prisma, PrismaClient, Project, ProjectAccess, ProjectRole } from '../generated/prisma/client.ts';
import { assertId, isExternal, isStaff, readableProjectWhere } from './access.ts';
import { audit, auditedBy } from './audit.ts';
import type { ChannelLog } from './channel-log.ts';
import { conflict, DomainError, forbidden, notFound } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';

export interface GrantProjectAccessInput {
  projectId: string;
  userId: string;
  role: ProjectRole;
  canComment?: boolean | null;
  canCreateTasks?: boolean | null;
}

type Query = { select?: Prisma.ProjectSelect; include?: Prisma.ProjectInclude };

/** Projects and the grants that let clients and external PMs into them. */
export class ProjectService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
  ) {}

  private assertStaff(viewer: Viewer) {
    if (!isStaff(viewer)) throw forbidden('Only organization staff manage projects');
  }

  /** Projects the viewer can see: all of the organization's for staff and members, granted ones for clients. */
  visibleWhere(viewer: Viewer): Prisma.ProjectWhereInput {
    return readableProjectWhere(viewer);
  }

  async get(viewer: Viewer, id: string, query: Query = {}): Promise<Project> {
    assertId(id, 'Project');
    const project = await this.prisma.project.findFirst({ ...query, where: { id, ...this.visibleWhere(viewer) } });
    if (!project) throw notFound('Project');
    return project as Project;
  }

  async create(viewer: Viewer, input: { name: string; description?: string | null }): Promise<Project> {
    this.assertStaff(viewer);
    try {
      return await this.prisma.$transaction(async (tx) => {
        const project = await tx.project.create({
          data: { organizationId: viewer.organizationId, name: input.name, description: input.description ?? null },
        });
        await audit(tx, {
          organizationId: viewer.organizationId,
          actorId: viewer.id,
          action: 'project.create',
          targetType: 'Project',
          targetId: project.id,
        });
        return project;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`A project named "${input.name}" exists`, { field: 'name' });
      throw error;
    }
  }

  async grant(viewer: Viewer, input: GrantProjectAccessInput): Promise<ProjectAccess> {
    this.assertStaff(viewer);
    const project = await this.get(viewer, input.projectId);
    assertId(input.userId, 'User');
    const user = await this.prisma.user.findFirst({ where: { id: input.userId, organizationId: viewer.organizationId } });
    if (!user) throw notFound('User');
    if (user.deactivatedAt) throw new DomainError('BAD_USER_INPUT', 'The user is deactivated', { field: 'userId' });
    const grant = {
      role: input.role,
      canComment: input.canComment ?? input.role !== 'VIEWER',
      canCreateTasks: input.canCreateTasks ?? false,
    };
    return this.prisma.$transaction(async (tx) => {
      const access = await tx.projectAccess.upsert({
        where: { projectId_userId: { projectId: project.id, userId: user.id } },
        create: { organizationId: viewer.organizationId, projectId: project.id, userId: user.id, ...grant },
        update: grant,
      });
      await audit(tx, {
        organizationId: viewer.organizationId,
        actorId: viewer.id,
        action: 'project.grant',
        targetType: 'ProjectAccess',
        targetId: access.id,
        data: { userId: user.id, ...grant },
      });
      return access;
    });
  }

  /**
   * Removes a grant. An external user also leaves the project's channels in the
   * same transaction, so their channel list and live streams end with the grant.
   */
  async revoke(viewer: Viewer, projectId: string, userId: string): Promise<boolean> {
    this.assertStaff(viewer);
    const project = await this.get(viewer, projectId);
    assertId(userId, 'User');
    const access = await this.prisma.projectAccess.findUnique({
      where: { projectId_userId: { projectId: project.id, userId } },
      include: { user: { select: { role: true } } },
    });
    if (!access) throw notFound('Project access');
    await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      await tx.projectAccess.delete({ where: { id: access.id } });
      if (isExternal(access.user.role)) {
        const memberships = await tx.channelMember.findMany({
          where: { userId, channel: { projectId: project.id } },
          select: { id: true, channelId: true },
          orderBy: { channelId: 'asc' },
        });
        for (const m of memberships) {
          await tx.channelMember.delete({ where: { id: m.id } });
          await log.append(m.channelId, 'MEMBER_REMOVED', { userId, reason: 'PROJECT_ACCESS_REVOKED' });
          // Each channel's own trail says who left it and why, as a removal by hand does.
          await audit(tx, {
            ...auditedBy(viewer),
            action: 'channel.removeMember',
            targetType: 'Channel',
            targetId: m.channelId,
            data: { userId, reason: 'PROJECT_ACCESS_REVOKED' },
          });
        }
      }
      await audit(tx, {
        organizationId: viewer.organizationId,
        actorId: viewer.id,
        action: 'project.revoke',
        targetType: 'ProjectAccess',
        targetId: access.id,
        data: { userId },
      });
    });
    return true;
  }
}
