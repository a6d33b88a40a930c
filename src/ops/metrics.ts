import type { ServerResponse } from 'node:http';
import { getOperationAST, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type pg from 'pg';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Counts kept by the realtime code as plain numbers: the code incrementing
 * them runs once per event per socket, where prom-client's `inc()` would
 * allocate a label object each time. They are read when Prometheus scrapes.
 */
export interface RealtimeCounters {
  /** Events written to a subscriber's socket. */
  liveDeliveries: number;
  /** Gaps in a channel's seq that the hub filled from the log after waiting for the missing event. */
  gapFills: number;
  /** Channels the hub caught up from the log after the pub/sub connection came back. */
  resyncs: number;
  /** ioredis 'reconnecting' events of the pub/sub connections. */
  redisReconnects: number;
}

export interface MetricsSources {
  pool: pg.Pool;
  /** Open WebSocket connections, read at scrape time. */
  openSockets: () => number;
}

export interface Metrics {
  readonly registry: Registry;
  /** The Yoga plugin counting operations, their duration and active subscriptions. */
  readonly plugin: Plugin;
  /** Handed to the realtime code (see RealtimeCounters). */
  readonly counters: RealtimeCounters;
  /** Requests and connections a rate limit refused, by limit (`extensions.limit` of their errors). */
  readonly rateLimited: Counter<'limit'>;
  /** Passes of the message retention job, by outcome: `ran`, `skipped` (another pass held the lock) or `failed`. */
  readonly retentionRuns: Counter<'outcome'>;
  /** Messages the retention job deleted for good, by reason: `deleted` (soft-deleted past the period) or `policy` (the organization's). */
  readonly retentionPurged: Counter<'reason'>;
  /** `maskError` counting each error it hands to a client, by its `extensions.code`. */
  counting<F extends (error: unknown, message: string) => Error>(maskError: F): F;
  /** Writes the registry in Prometheus' text format. */
  respond(res: ServerResponse): Promise<void>;
}

/**
 * Operation names come from clients: past this many distinct ones, new names
 * are counted as `other`, so a client cannot grow the registry without bound.
 */
const MAX_OPERATION_NAMES = 200;

// Most operations answer in milliseconds; the long tail is what an alert needs to see.
const DURATION_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * One registry per app (tests run several apps in one process, and the global
 * registry refuses a second metric of the same name).
 */
export function createMetrics({ pool, openSockets }: MetricsSources): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const counters: RealtimeCounters = { liveDeliveries: 0, gapFills: 0, resyncs: 0, redisReconnects: 0 };
  const fromCounter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  fromCounter('parley_live_deliveries_total', 'Live events written to subscribers’ sockets', () => counters.liveDeliveries);
  fromCounter('parley_channel_hub_gap_fills_total', 'Seq gaps the channel hub filled from the log', () => counters.gapFills);
  fromCounter(
    'parley_channel_hub_resyncs_total',
    'Channels the hub caught up from the log after a pub/sub reconnect',
    () => counters.resyncs,
  );
  fromCounter('parley_pubsub_reconnects_total', 'Reconnection attempts of the Redis pub/sub connections', () => counters.redisReconnects);

  const rateLimited = new Counter({
    name: 'parley_rate_limited_total',
    help: 'Requests, operations and connections refused by a rate limit, by limit',
    labelNames: ['limit'] as const,
    registers,
  });

  const retentionRuns = new Counter({
    name: 'parley_message_retention_runs_total',
    help: 'Passes of the message retention job, by outcome (ran, skipped while another process held the lock, failed)',
    labelNames: ['outcome'] as const,
    registers,
  });
  const retentionPurged = new Counter({
    name: 'parley_message_retention_purged_total',
    help: 'Messages deleted for good by the retention job, by reason (deleted: soft-deleted past the period; policy: organization policy)',
    labelNames: ['reason'] as const,
    registers,
  });

  const operations = new Counter({
    name: 'parley_graphql_operations_total',
    help: 'GraphQL operations by name, type and outcome (success or error)',
    labelNames: ['operation_name', 'operation_type', 'outcome'],
    registers,
  });
  const duration = new Histogram({
    name: 'parley_graphql_operation_duration_seconds',
    help: 'Execution time of queries and mutations; for subscriptions, the time to set up the stream',
    labelNames: ['operation_name', 'operation_type', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const errors = new Counter({
    name: 'parley_graphql_errors_total',
    help: 'GraphQL errors sent to clients, by extensions.code',
    labelNames: ['code'],
    registers,
  });
  let activeSubscriptions = 0;
  new Gauge({
    name: 'parley_graphql_active_subscriptions',
    help: 'Subscriptions streaming now (WebSocket and server-sent events)',
    registers,
    collect() {
      this.set(activeSubscriptions);
    },
  });
  new Gauge({
    name: 'parley_websocket_open_sockets',
    help: 'Open WebSocket connections',
    registers,
    collect() {
      this.set(openSockets());
    },
  });
  new Gauge({
    name: 'parley_db_pool_in_use',
    help: 'Database connections lent out by the pool',
    registers,
    collect() {
      this.set(pool.totalCount - pool.idleCount);
    },
  });
  new Gauge({
    name: 'parley_db_pool_waiting',
    help: 'Requests waiting for a database connection',
    registers,
    collect() {
      this.set(pool.waitingCount);
    },
  });
  new Gauge({
    name: 'parley_db_pool_connections',
    help: 'Database connections open in the pool',
    registers,
    collect() {
      this.set(pool.totalCount);
    },
  });

  // The children of one label set, looked up once: prom-client hashes a
  // labels object on every inc() and observe(), a cost on every operation.
  const series = new Map<string, { count: { inc(): void }; time: { observe(seconds: number): void } }>();
  const names = new Set<string>();
  const seriesOf = (args: ExecutionArgs, outcome: string) => {
    const operation = getOperationAST(args.document, args.operationName);
    let name = operation?.name?.value ?? 'anonymous';
    if (!names.has(name)) {
      if (names.size < MAX_OPERATION_NAMES) names.add(name);
      else name = 'other';
    }
    const type = operation?.operation ?? 'unknown';
    const key = `${name}\n${type}\n${outcome}`;
    let found = series.get(key);
    if (!found) {
      found = { count: operations.labels(name, type, outcome), time: duration.labels(name, type, outcome) };
      series.set(key, found);
    }
    return found;
  };
  const record = (args: ExecutionArgs, start: number, outcome: string) => {
    const { count, time } = seriesOf(args, outcome);
    count.inc();
    time.observe((performance.now() - start) / 1000);
  };
  const outcomeOf = (result: unknown) => ((result as ExecutionResult).errors?.length ? 'error' : 'success');

  const plugin: Plugin = {
    // Yoga answers validation errors without masking them, so the masking
    // wrapper below never counts them (the query-limit rules throw theirs, which it does).
    onValidate() {
      return ({ valid, result }) => {
        if (!valid) errors.inc({ code: 'GRAPHQL_VALIDATION_FAILED' }, result.length);
      };
    },
    onExecute({ args }) {
      const start = performance.now();
      return {
        onExecuteDone({ result }) {
          record(args, start, isAsyncIterable(result) ? 'success' : outcomeOf(result));
        },
      };
    },
    onSubscribe({ args }) {
      const start = performance.now();
      let streaming = false;
      // envelop calls onEnd when a stream completes or is returned, onSubscribeError when it fails.
      const end = () => {
        if (streaming) activeSubscriptions--;
        streaming = false;
      };
      return {
        onSubscribeResult({ result }) {
          if (!isAsyncIterable(result)) return record(args, start, outcomeOf(result));
          record(args, start, 'success');
          activeSubscriptions++;
          streaming = true;
          return { onEnd: end };
        },
        onSubscribeError: end,
      };
    },
  };

  return {
    registry,
    plugin,
    counters,
    rateLimited,
    retentionRuns,
    retentionPurged,
    counting: (maskError) =>
      ((error: unknown, message: string) => {
        const masked = maskError(error, message);
        const code = (masked as { extensions?: { code?: unknown } }).extensions?.code;
        errors.inc({ code: typeof code === 'string' ? code : 'NONE' });
        return masked;
      }) as typeof maskError,
    async respond(res) {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(body);
    },
  };
}
