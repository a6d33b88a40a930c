import type { Viewer } from './viewer.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { Tx } from '../db/tx.ts';
import { badInput, conflict } from './errors.ts';

const KEY_MAX = 200;

/** Stores the key with the change it made, in the change's transaction. */
export type Remember = (tx: Tx, targetId: string) => Promise<void>;

/**
 * Runs a mutation at most once per (user, idempotency key). The key is stored
 * in the mutation's own transaction, so it exists exactly when the change
 * does; a retry, also one racing the original, gets `replay` of the item the
 * first run acted on instead of acting again. Without a key, `run` just runs.
 * A key reused for another operation is a CONFLICT.
 */
export async function idempotent<T>(
  prisma: PrismaClient,
  viewer: Viewer,
  key: string | null | undefined,
  operation: string,
  run: (remember: Remember) => Promise<T>,
  replay: (targetId: string) => Promise<T>,
): Promise<T> {
  if (key == null) return run(async () => {});
  if (key.length === 0 || key.length > KEY_MAX) throw badInput('idempotencyKey', `An idempotency key has 1 to ${KEY_MAX} characters`);
  const earlier = await previously(prisma, viewer, key, operation);
  if (earlier) return replay(earlier);
  try {
    return await run(async (tx, targetId) => {
      await tx.idempotencyKey.create({ data: { userId: viewer.id, key, organizationId: viewer.organizationId, operation, targetId } });
    });
  } catch (error) {
    // A retry that raced the original failed after the original committed:
    // on the key's unique index (two creates), or on the item's state, which
    // it read under the row lock the original held until its commit (two
    // moves: the second finds the status already changed). The original's
    // result is there now.
    const raced = await previously(prisma, viewer, key, operation);
    if (raced) return replay(raced);
    throw error;
  }
}

async function previously(prisma: PrismaClient, viewer: Viewer, key: string, operation: string): Promise<string | null> {
  const row = await prisma.idempotencyKey.findUnique({ where: { userId_key: { userId: viewer.id, key } } });
  if (!row) return null;
  if (row.operation !== operation) throw conflict(`This idempotency key was used for ${row.operation}`, { field: 'idempotencyKey' });
  return row.targetId;
}
