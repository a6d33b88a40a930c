import { Prisma, type NotificationType, type PrismaClient } from '../generated/prisma/client.ts';
import { columns } from '../db/columns.ts';
import type { Tx } from '../db/tx.ts';
import type { ChannelLog, LogWriter } from './channel-log.ts';
import type { Clock } from './clock.ts';
import { conflict } from './errors.ts';
import { idempotent } from './idempotency.ts';
import type { ItemAction, ItemKind, ItemStatus } from '../bus/events.ts';
import { joinItemChannel, recordItemChange } from './item-log.ts';
import type { NotificationDraft, NotificationService } from './notifications.ts';
import type { Viewer } from './viewer.ts';

/**
 * One kind of state change of a request or ticket: where it may start, where
 * it leads and who may make it. Each item declares its moves as a table.
 */
export interface Move<S extends string, Who extends string, A extends string = string> {
  /** The mutation's name; an idempotency key is bound to it. */
  operation: string;
  /** What the audit entry and the system event call the change: APPROVED, ASSIGNED, ... */
  action: A;
  who: Who;
  /** The status after the change, given the one before (a fixed status, or e.g. "unchanged"). */
  to: S | ((current: S) => S);
  /** The statuses the move starts from; by default every status the machine leads from into `to`. */
  from?: readonly S[];
}

/** The row fields the workflow itself reads. */
export interface ItemRow<S extends string> {
  id: string;
  status: S;
  requesterId: string;
  channelId: string;
}

/** What a request or a ticket declares so that the workflow can run its moves. */
export interface ItemRules<I extends ItemKind, Row extends ItemRow<ItemStatus<I>>, Who extends string, Data> {
  item: I;
  table: 'ClientRequest' | 'SupportTicket';
  /** Every status and the statuses it may change into. */
  machine: Record<ItemStatus<I>, readonly ItemStatus<I>[]>;
  /** The item as the viewer may see it; NOT_FOUND otherwise. */
  get(viewer: Viewer, id: string): Promise<Row>;
  /** Whether the viewer may make moves as `who` (FORBIDDEN, with the item's own wording, if not). */
  authorize(viewer: Viewer, who: Who, row: Row): void | Promise<void>;
  /** The CONFLICT message for a move the status does not allow. */
  refusal(status: ItemStatus<I>, to: ItemStatus<I>, action: string): string;
  /** Whether the actor joins the item's conversation by making the move. */
  actorJoins(viewer: Viewer, who: Who, row: Row): boolean;
  write(tx: Tx, id: string, status: ItemStatus<I>, data: Data): Promise<Row>;
  /** The item's row after an earlier run of the same idempotent change. */
  reload(id: string): Promise<Row>;
  /** Fields every move writes with its status, whatever the move (the SLA pause). */
  onMove?(row: Row, to: ItemStatus<I>, now: Date): Data;
  /** How the requester is told about a status change; the workflow adds from, to, reason and the actor's name. */
  notice(row: Row): { type: NotificationType; requestId?: string; ticketId?: string; data: Record<string, unknown> };
}

/** What one call adds to its move: the reason, the fields it writes, who else joins, who else is told. */
export interface Change<Row, Data> {
  reason?: string | null;
  data?: (now: Date, row: Row) => Data;
  /** Recorded with the audit entry and the system event; a function sees the row before and after the write. */
  detail?: Record<string, unknown> | ((tx: Tx, before: Row, after: Row) => Record<string, unknown> | Promise<Record<string, unknown>>);
  joins?: string[];
  notify?: (tx: Tx, row: Row) => NotificationDraft[] | Promise<NotificationDraft[]>;
}

export interface WorkflowDeps {
  prisma: PrismaClient;
  channelLog: ChannelLog;
  notifications: NotificationService;
  clock: Clock;
}

/** The statuses the machine leads from into `to`. */
export function into<S extends string>(machine: Record<S, readonly S[]>, to: S): S[] {
  return (Object.keys(machine) as S[]).filter((s) => machine[s].includes(to));
}

/**
 * Checks a table of moves against the machine: each move's start statuses
 * must lead where it goes (or stay). Run when a service is built, so a wrong
 * table fails at start, not on the first request that takes the bad edge.
 */
export function checkMoves<S extends string, Who extends string>(
  machine: Record<S, readonly S[]>,
  moves: Record<string, Move<S, Who>>,
): Record<string, readonly S[]> {
  const from: Record<string, readonly S[]> = {};
  for (const [name, move] of Object.entries(moves)) {
    if (!move.from && typeof move.to === 'function') throw new Error(`Move ${name} needs its start statuses`);
    from[name] = move.from ?? into(machine, move.to as S);
    for (const status of from[name]) {
      if (!(status in machine)) throw new Error(`Move ${name} starts from ${status}, which the machine does not know`);
      const to = typeof move.to === 'function' ? move.to(status) : move.to;
      if (to !== status && !machine[status].includes(to))
        throw new Error(`Move ${name} goes from ${status} to ${to}, which the machine does not allow`);
    }
  }
  return from;
}

/**
 * The one way a request or ticket changes state, in one transaction: the row
 * is locked (SELECT … FOR UPDATE) and the move checked against the status
 * found there (of two racing moves one wins; the other gets a CONFLICT
 * naming the status), then the row is written, the actor and named
 * participants join its conversation, the change is recorded (audit entry,
 * system event in the channel log, updates for its members) and the
 * requester, and whoever the move names, are notified. With an idempotency
 * key, a retry returns the first run's item.
 */
export class Workflow<I extends ItemKind, Row extends ItemRow<ItemStatus<I>>, Who extends string, Data, K extends string> {
  private readonly from: Record<string, readonly ItemStatus<I>[]>;

  constructor(
    private readonly deps: WorkflowDeps,
    private readonly rules: ItemRules<I, Row, Who, Data>,
    private readonly moves: Record<K, Move<ItemStatus<I>, Who, ItemAction<I>>>,
  ) {
    this.from = checkMoves(rules.machine, moves);
  }

  async run(viewer: Viewer, id: string, key: string | null | undefined, name: K, change: Change<Row, Data> = {}): Promise<Row> {
    const move = this.moves[name];
    const rules = this.rules;
    const current = await rules.get(viewer, id);
    await rules.authorize(viewer, move.who, current);
    return idempotent(
      this.deps.prisma,
      viewer,
      key,
      move.operation,
      (remember) =>
        this.deps.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
          const row = await this.lock(tx, current.id);
          const to = typeof move.to === 'function' ? move.to(row.status) : move.to;
          if (!this.from[name]!.includes(row.status)) throw conflict(rules.refusal(row.status, to, move.action), { status: row.status });
          const now = this.deps.clock.now();
          const data = { ...rules.onMove?.(row, to, now), ...change.data?.(now, row) } as Data;
          const updated = await rules.write(tx, row.id, to, data);
          const joins = [...(change.joins ?? []), ...(rules.actorJoins(viewer, move.who, row) ? [viewer.id] : [])];
          for (const userId of joins) await joinItemChannel(tx, log, userId, row.channelId);
          const detail = typeof change.detail === 'function' ? await change.detail(tx, row, updated) : change.detail;
          const reason = change.reason ?? null;
          await recordItemChange(tx, log, viewer, {
            item: rules.item,
            itemId: row.id,
            channelId: row.channelId,
            action: move.action,
            from: row.status,
            to,
            reason,
            detail,
          });
          const drafts: NotificationDraft[] = [];
          if (to !== row.status) {
            const notice = rules.notice(updated);
            drafts.push({
              ...notice,
              userId: row.requesterId,
              data: { ...notice.data, from: row.status, to, reason, actorName: viewer.displayName },
            });
          }
          drafts.push(...((await change.notify?.(tx, updated)) ?? []));
          await this.deps.notifications.notify(tx, log, viewer, drafts);
          await remember(tx, row.id);
          return updated;
        }),
      (targetId) => rules.reload(targetId),
    );
  }

  /**
   * Files a new item in one transaction: `insert` writes it (with its
   * conversation and whatever goes with it), then its creation is recorded
   * like any change, from no status to its first. With an idempotency key, a
   * retry returns the first run's item.
   */
  create(
    viewer: Viewer,
    key: string | null | undefined,
    creation: { operation: string; action: ItemAction<I> },
    insert: (tx: Tx, log: LogWriter) => Promise<Row>,
  ): Promise<Row> {
    return idempotent(
      this.deps.prisma,
      viewer,
      key,
      creation.operation,
      (remember) =>
        this.deps.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
          const row = await insert(tx, log);
          await recordItemChange(tx, log, viewer, {
            item: this.rules.item,
            itemId: row.id,
            channelId: row.channelId,
            action: creation.action,
            from: null,
            to: row.status,
          });
          await remember(tx, row.id);
          return row;
        }),
      (targetId) => this.rules.reload(targetId),
    );
  }

  private async lock(tx: Tx, id: string): Promise<Row> {
    const table = Prisma.raw(`"${this.rules.table}"`);
    const [row] = await tx.$queryRaw<Row[]>`SELECT ${columns(this.rules.table)} FROM ${table} WHERE id = ${id}::uuid FOR UPDATE`;
    return row!;
  }
}
