import type { Viewer } from './viewer.ts';
import type { AuditLog, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import type { Tx } from '../db/tx.ts';
import { badInput, notFound } from './errors.ts';

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

/** The organization and actor of an entry for a change the viewer makes. */
export const auditedBy = (viewer: Pick<Viewer, 'organizationId' | 'id'>): Pick<AuditEntry, 'organizationId' | 'actorId'> => ({
  organizationId: viewer.organizationId,
  actorId: viewer.id,
});

export interface AuditFilter {
  target: { targetType: string; targetId: string } | null;
  actorId: string | null;
  action: string | null;
  /** Entries at or after this instant. */
  from: Date | null;
  /** Entries before this instant. */
  to: Date | null;
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
   * The organization's entries matching `filter` (`from` inclusive, `to`
   * exclusive, so consecutive ranges never count an entry twice). An actor
   * the viewer cannot see, or a target with no entry in this organization
   * (another organization's object, or none at all), is NOT_FOUND.
   */
  async where(viewer: Viewer, filter: AuditFilter): Promise<Prisma.AuditLogWhereInput> {
    if (filter.from && filter.to && filter.from > filter.to) throw badInput('filter.from', 'from must not be after to');
    const where: Prisma.AuditLogWhereInput = {
      organizationId: viewer.organizationId,
      ...(filter.target ?? {}),
      ...(filter.actorId ? { actorId: filter.actorId } : {}),
      ...(filter.action ? { action: filter.action } : {}),
      ...(filter.from || filter.to
        ? { createdAt: { ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lt: filter.to } : {}) } }
        : {}),
    };
    if (filter.actorId) await this.users.visibleIds(viewer, [filter.actorId]);
    if (filter.target && !(await this.prisma.auditLog.count({ where: { organizationId: viewer.organizationId, ...filter.target } }))) {
      throw notFound(filter.target.targetType);
    }
    return where;
  }

  /**
   * The export: the organization's entries matching `filter`, oldest first,
   * `batch` at a time, read by id (time-ordered UUIDv7) so no entry is
   * skipped or repeated while new ones are written.
   */
  async *batches(viewer: Viewer, filter: AuditFilter, batch = 500): AsyncGenerator<AuditLog[]> {
    const where = await this.where(viewer, filter);
    let after: string | null = null;
    for (;;) {
      const rows: AuditLog[] = await this.prisma.auditLog.findMany({
        where: after === null ? where : { AND: [where, { id: { gt: after } }] },
        orderBy: { id: 'asc' },
        take: batch,
      });
      if (rows.length > 0) yield rows;
      if (rows.length < batch) return;
      after = rows.at(-1)!.id;
    }
  }
}
