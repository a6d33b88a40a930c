import type { Prisma } from '../generated/prisma/client.ts';
import type { Tx } from './channel-log.ts';

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
