import type { Prisma } from '../generated/prisma/client.ts';

/** A Prisma interactive transaction, as services pass it to each other. */
export type Tx = Prisma.TransactionClient;
