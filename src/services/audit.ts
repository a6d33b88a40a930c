import type { Viewer } from './viewer.ts';
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';
import type { Tx } from '../db/tx.ts';
import { notFound } from './errors.ts';

export interface AuditEntry {
  organizationId: string;
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  data?: Record<string, unknown>;
}

/** Records an administrative change in the caller's transaction, so it exists exactly when the change does. */
export async function audit(tx: Tx, entry: AuditEntry): Promise<void> {
  await tx.auditLog.create({ data: { ...entry, data: (entry.data ?? undefined) as Prisma.InputJsonValue | undefined } });
}

export interface AuditFilter {
  target: { targetType: string; targetId: string } | null;
  actorId: string | null;
  action: string | null;
}

/** What reading the audit trail needs of the users service (UserService). */
interface VisibleUsers {
  /** The ids the viewer may see, in order; NOT_FOUND for any other. */
  visibleIds(viewer: Viewer, ids: string[]): Promise<string[]>;
}

/** Reading the audit trail (admins; the schema checks the role). */
export class AuditService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly users: VisibleUsers,
  ) {}

  /**
   * The organization's entries matching `filter`. An actor the viewer cannot
   * see, or a target with no entry in this organization (another
   * organization's object, or none at all), is NOT_FOUND.
   */
  async where(viewer: Viewer, filter: AuditFilter): Promise<Prisma.AuditLogWhereInput> {
    const where: Prisma.AuditLogWhereInput = {
      organizationId: viewer.organizationId,
      ...(filter.target ?? {}),
      ...(filter.actorId ? { actorId: filter.actorId } : {}),
      ...(filter.action ? { action: filter.action } : {}),
    };
    if (filter.actorId) await this.users.visibleIds(viewer, [filter.actorId]);
    if (filter.target && !(await this.prisma.auditLog.count({ where: { organizationId: viewer.organizationId, ...filter.target } }))) {
      throw notFound(filter.target.targetType);
    }
    return where;
  }
}
