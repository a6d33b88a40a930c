import type { Logger } from 'pino';
import { Prisma, type PrismaClient } from '../generated/prisma/client.ts';
import type { ChannelHub } from '../bus/channel-hub.ts';
import type { ChannelEvent, ChannelEventPayloads, ChannelEventType } from '../bus/events.ts';
import type { ParleyPubSub, UserSignal } from '../bus/pubsub.ts';
import type { Tx } from '../db/tx.ts';

/** Appends entries to channel logs inside the caller's transaction. */
export interface LogWriter {
  /**
   * Takes the channel's next seq (`UPDATE … RETURNING`, so concurrent writers
   * queue on the channel row and commit in seq order: DESIGN §1.2) and records
   * the event. `payload` may be a function of the seq, for rows that store it.
   */
  append<K extends ChannelEventType>(
    channelId: string,
    type: K,
    payload: ChannelEventPayloads[K] | ((seq: number) => Promise<ChannelEventPayloads[K]>),
  ): Promise<number>;
  /** Publishes `signal` on the user's own topic once the transaction has committed. */
  signal(userId: string, signal: UserSignal): void;
}

/**
 * Writers to one channel queue on its row, and the rest queue for a pool
 * connection behind them. Prisma's defaults (2 s to get a connection, 5 s per
 * transaction) turn a burst of a few hundred sends to one busy channel into
 * masked P2028 errors although every one of them would commit within seconds.
 */
const TRANSACTION_LIMITS = { maxWait: 15_000, timeout: 15_000 };

/**
 * The one way services change a channel: run `work` in a transaction with a
 * LogWriter, and publish the appended events only after the commit succeeded
 * (DESIGN §1.5). A failed publish is logged and repaired by catch-up from the log.
 */
export class ChannelLog {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: ParleyPubSub,
    private readonly log: Logger,
    private readonly hub: Pick<ChannelHub, 'offer'>,
  ) {}

  async transaction<T>(organizationId: string, actorId: string | null, work: (tx: Tx, log: LogWriter) => Promise<T>): Promise<T> {
    const pending: ChannelEvent[] = [];
    const signals: { userId: string; signal: UserSignal }[] = [];
    const result = await this.prisma.$transaction(async (tx) => {
      const writer: LogWriter = {
        append: async <K extends ChannelEventType>(
          channelId: string,
          type: K,
          payload: ChannelEventPayloads[K] | ((seq: number) => Promise<ChannelEventPayloads[K]>),
        ) => {
          const seq = await nextSeq(tx, channelId, type === 'MESSAGE_ADDED');
          const body = typeof payload === 'function' ? await payload(seq) : payload;
          const row = await tx.channelEvent.create({
            data: { channelId, seq, organizationId, type, actorId, payload: body as Prisma.InputJsonValue },
            select: { createdAt: true },
          });
          // The union cannot follow K through the object literal; type and payload were checked together above.
          pending.push({ channelId, seq, type, actorId, createdAt: row.createdAt.toISOString(), payload: body } as ChannelEvent);
          return seq;
        },
        signal: (userId, signal) => void signals.push({ userId, signal }),
      };
      return work(tx, writer);
    }, TRANSACTION_LIMITS);
    this.publish(pending);
    this.signal(signals);
    return result;
  }

  private signal(signals: { userId: string; signal: UserSignal }[]) {
    for (const { userId, signal } of signals) {
      this.pubsub
        .publish(`user:${userId}`, signal)
        .catch((error: unknown) => this.log.warn({ err: error, userId }, 'publishing a user signal failed'));
    }
  }

  /**
   * For a change written together with its event in one statement (see
   * `bumpSeq`): no interactive transaction, one round trip. Publishes after the
   * statement committed, like `transaction`, and then `signals` (the
   * notifications the statement created) on their users' topics.
   */
  async statement<T>(
    run: (db: PrismaClient) => Promise<{ result: T; event: ChannelEvent | null; signals?: { userId: string; signal: UserSignal }[] }>,
  ): Promise<T> {
    const { result, event, signals } = await run(this.prisma);
    if (event) this.publish([event]);
    if (signals?.length) this.signal(signals);
    return result;
  }

  private publish(events: ChannelEvent[]) {
    const failed = (error: unknown, event: ChannelEvent) =>
      this.log.warn({ err: error, channelId: event.channelId, seq: event.seq }, 'publish failed; subscribers catch up from the log');
    for (const event of events) {
      // This process's own subscribers need not wait for the round trip
      // through Redis; the hub drops the copy that comes back by its seq. The
      // copy offered has been through JSON like every other, so live events
      // look the same whichever way they arrived.
      this.hub.offer(JSON.parse(JSON.stringify(event)) as ChannelEvent);
      this.pubsub.publish(`channel:${event.channelId}`, event).catch((error: unknown) => failed(error, event));
      // Membership changes also reach the users themselves, whose own stream
      // (viewerEvents) is not listening to a channel they just joined.
      for (const signal of userSignals(event)) {
        this.pubsub.publish(`user:${signal.userId}`, signal.signal).catch((error: unknown) => failed(error, event));
      }
    }
  }
}

function userSignals(event: ChannelEvent): { userId: string; signal: UserSignal }[] {
  if (event.type === 'MEMBER_ADDED') {
    return event.payload.userIds.map((userId) => ({ userId, signal: { type: 'CHANNEL_ADDED', channelId: event.channelId } }));
  }
  if (event.type === 'MEMBER_REMOVED') {
    return [
      { userId: event.payload.userId, signal: { type: 'CHANNEL_REMOVED', channelId: event.channelId, reason: event.payload.reason } },
    ];
  }
  return [];
}

/**
 * The seq allocation of DESIGN §1.2 as CTEs `bump` (its `lastSeq` is the new
 * seq) and `unhide`, for statements that write a message and its event at
 * once. The row lock taken by the UPDATE queues concurrent writers, who then
 * commit in seq order. A new message is activity: it moves the channel up the
 * lists and brings it back for members who hid it.
 */
export function bumpSeq(channelId: string, activity: boolean, guard: Prisma.Sql = Prisma.sql`true`): Prisma.Sql {
  // `guard` is a condition on the channel row `c`; when it is false nothing is
  // bumped and the statement writes nothing.
  return activity
    ? Prisma.sql`bump AS (
        UPDATE "Channel" c SET "lastSeq" = c."lastSeq" + 1, "lastActivityAt" = now()
        WHERE c.id = ${channelId}::uuid AND ${guard} RETURNING c."lastSeq"
      ), unhide AS (
        UPDATE "ChannelMember" SET "hiddenAt" = NULL
        WHERE "channelId" = ${channelId}::uuid AND "hiddenAt" IS NOT NULL AND EXISTS (SELECT 1 FROM bump)
      )`
    : Prisma.sql`bump AS (
        UPDATE "Channel" c SET "lastSeq" = c."lastSeq" + 1
        WHERE c.id = ${channelId}::uuid AND ${guard} RETURNING c."lastSeq"
      )`;
}

async function nextSeq(tx: Tx, channelId: string, activity: boolean): Promise<number> {
  const rows = await tx.$queryRaw<{ lastSeq: number }[]>`WITH ${bumpSeq(channelId, activity)} SELECT "lastSeq" FROM bump`;
  const row = rows[0];
  if (!row) throw new Error(`channel ${channelId} vanished inside a transaction`);
  return row.lastSeq;
}
