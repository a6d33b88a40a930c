import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { GraphQLError, type DocumentNode } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import pino, { type Logger } from 'pino';
import { TokenService } from './auth/tokens.ts';
import type { Config } from './config.ts';
import { bearerToken, createContext, type Context } from './context.ts';
import { createPool, createPrisma } from './db/client.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { maskError, maskResult, operationError, useUnexpectedErrorLog, yogaLogger } from './errors.ts';
import { renderGraphiQL } from './graphiql.ts';
import { refuseBody } from './http-body.ts';
import { createOpsRoutes } from './ops/http.ts';
import { createMetrics } from './ops/metrics.ts';
import { createReadiness } from './ops/readiness.ts';
import { createPubSub } from './realtime/pubsub.ts';
import { useSharedSubscriptionExecution } from './realtime/shared-execution.ts';
import { SocketClose, SocketRegistry } from './realtime/sockets.ts';
import { schema } from './schema/index.ts';
import { createServices, type Services } from './services/index.ts';
import { StartupError } from './startup-error.ts';

export interface App {
  /** Starts listening; resolves with the bound port (useful with port 0). */
  start(port?: number): Promise<number>;
  /** Stops accepting connections, closes sockets, pub/sub and the database. */
  stop(): Promise<void>;
  readonly services: Services;
  readonly log: Logger;
  readonly databaseUrl: string;
  /** Statements sent to the database so far (only counted when `countQueries` is set). */
  queryCount(): number;
}

/** Wires config -> database -> services -> GraphQL over HTTP and graphql-ws on one port. */
export async function buildApp(config: Config, options: { log?: Logger; countQueries?: boolean } = {}): Promise<App> {
  const log = options.log ?? pino({ level: config.logLevel });
  let embedded: EmbeddedPostgres | null = null;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.dataDir);
    databaseUrl = embedded.url;
    log.info({ dataDir: config.dataDir }, 'embedded PGlite database');
  }
  const { applied } = await migrate(databaseUrl, { log: (msg) => log.info(msg) });
  if (applied.length) log.info({ applied }, 'migrations applied');

  let queries = 0;
  const pool = createPool(databaseUrl, { poolSize: embedded ? 1 : config.databasePoolSize, freshSessions: embedded !== null });
  const prisma = createPrisma(pool, {
    preparedStatements: config.databasePreparedStatements,
    onQuery: options.countQueries ? () => void queries++ : undefined,
  });
  const metrics = config.metrics.enabled ? createMetrics({ pool, openSockets: (): number => wss.clients.size }) : null;
  const pubsub = createPubSub(config.redisUrl, config.redisPrefix, log, metrics?.counters);
  const tokens = new TokenService(config.jwtSecret, config.tokenTtlSeconds);
  const services = createServices({ prisma, pubsub, tokens, config, log });
  services.hub.counters = metrics?.counters ?? null;
  const mask = metrics ? metrics.counting(maskError) : maskError;

  const yoga = createYoga<{ wsToken?: string | null }, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: config.graphiql ? { subscriptionsProtocol: 'WS' } : false,
    renderGraphiQL,
    landingPage: false,
    // Bodies are bounded by their Content-Length before Yoga sees them (refuseBody).
    maxRequestBodySize: false,
    logging: yogaLogger(log),
    maskedErrors: { maskError: mask },
    plugins: [
      useUnexpectedErrorLog(log),
      ...(metrics ? [metrics.plugin] : []),
      // Bounds on what one document may ask for, checked before execution. The
      // deepest real client query (channel > messages > node > parent > replies
      // > node > sender > organization) needs 10.
      maxTokensPlugin({ n: 2000 }),
      maxDepthPlugin({ n: 12, flattenFragments: true }),
      // Aliases of __typename count too (the plugin exempts them by default):
      // 500 of them cost as much to answer as 500 of anything else.
      maxAliasesPlugin({ n: 20, allowList: [] }),
      // The cost counts a literal `first`: a history screen of 50 messages with
      // their senders and 5 readers each must pass (tested), a page of 100
      // messages with 20 readers each (2,000 users) does not.
      costLimitPlugin({ maxCost: 30_000 }),
      useSharedSubscriptionExecution(),
    ],
    context: async (initial) => {
      const requestId = initial.request?.headers.get('x-request-id') ?? randomUUID();
      const token = initial.wsToken !== undefined ? initial.wsToken : bearerToken(initial.request.headers.get('authorization'));
      return createContext(services, token, requestId);
    },
  });

  // Responses still being written: stop() asks them to close their
  // connection when done, so server.close() need not wait out keep-alive.
  const inFlight = new Set<ServerResponse>();
  let stopping = false;
  // Idle connections stay open longer than a load balancer in front keeps
  // them (60 s is common): the balancer closes them, so it never sends a
  // request down one this server closed at that moment (a "socket hang up").
  // Headers may take as long (nodejs/node#27363), and a request longer still.
  const server: Server = createServer({
    headersTimeout: config.httpKeepAliveTimeoutMs + 1000,
    requestTimeout: Math.max(300_000, config.httpKeepAliveTimeoutMs + 1000),
  });
  server.keepAliveTimeout = config.httpKeepAliveTimeoutMs;
  const readiness = createReadiness({ pool, pubsub });
  const ops = createOpsRoutes({ config, metrics, readiness, log, stopping: () => stopping });
  server.once('close', () => ops.close());
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (stopping) res.setHeader('connection', 'close');
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    if (ops.handle(req, res)) return;
    if (!refuseBody(req, res, config.httpMaxBodyBytes)) void yoga(req, res);
  });

  const limits = config.websocket;
  const sockets = new SocketRegistry(services.auth, pubsub, limits.maxSocketsPerUser, log, services.presence);
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: limits.maxPayloadBytes });
  useServer<Record<string, unknown>, { token: string }>(
    {
      connectionInitWaitTimeout: limits.connectionInitTimeoutMs,
      // The registry closes refused sockets itself, with the code that fits
      // (4401, 4403 or 4429); false only keeps graphql-ws from acknowledging.
      // A good token is still checked for every operation.
      onConnect: async (ctx) => {
        const token = await sockets.admit(ctx.extra.socket, socketToken(ctx.connectionParams));
        if (token === null) return false;
        ctx.extra.token = token;
        return true;
      },
      execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof import('graphql').subscribe }).subscribe(args),
      onSubscribe: async (ctx, id, params) => {
        // graphql-ws has already counted this operation in `subscriptions`.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerSocket) {
          return [tooManyOperations(limits.maxSubscriptionsPerSocket)];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          wsToken: ctx.extra.token,
        });
        // A GraphQLError thrown out of onSubscribe would close the whole socket
        // with 4500; the client gets it as the operation's error instead.
        let document: DocumentNode;
        let errors: readonly GraphQLError[];
        try {
          document = parse(params.query);
        } catch (error) {
          return refusal(error, 'GRAPHQL_PARSE_FAILED');
        }
        try {
          errors = validate(schema, document);
        } catch (error) {
          // The query-limit rules (aliases, depth, cost) throw theirs.
          return refusal(error, 'BAD_USER_INPUT');
        }
        if (errors.length) return clientErrors(errors, 'GRAPHQL_VALIDATION_FAILED');
        let contextValue: Context;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          return [operationError(error, log, randomUUID(), mask)];
        }
        contextValue.live = {
          socket: ctx.extra.socket,
          connection: ctx.extra.request.socket,
          id,
          mask: (result) => maskResult(result, log, contextValue.requestId, mask),
          maxBufferedBytes: limits.maxBufferedBytes,
          counters: metrics?.counters,
        };
        return {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue,
          rootValue: { execute, subscribe },
        };
      },
    },
    wss,
    // graphql-ws' keep-alive is the ws heartbeat: a ping every interval, and
    // terminate() if its pong has not come back one interval later.
    limits.pingIntervalMs,
  );
  // ws emits a socket's 'error' only for the client's protocol violations (a
  // frame over maxPayload, a malformed frame), after it has closed the socket
  // with the matching code (1009, 1002, ...). graphql-ws, listening first,
  // would print each to the console as an internal error of ours.
  wss.on('connection', (socket) => {
    socket.removeAllListeners('error');
    socket.on('error', (error) => log.debug({ err: error }, 'websocket closed for a protocol error'));
  });

  return {
    services,
    log,
    databaseUrl,
    queryCount: () => queries,
    start: (port = config.port) =>
      ops.listen().then(() => new Promise<number>((resolve, reject) => {
        // ws passes the HTTP server's errors on to the WebSocket server, where
        // graphql-ws would print a listen failure as an internal error of its
        // own: while listening starts, that failure is reported here alone.
        const wsErrorListeners = wss.rawListeners('error') as ((error: Error) => void)[];
        const quiet = () => {};
        wss.removeAllListeners('error');
        wss.on('error', quiet);
        const restore = () => {
          wss.off('error', quiet);
          for (const listener of wsErrorListeners) wss.on('error', listener);
        };
        server.once('error', (error: NodeJS.ErrnoException) => {
          restore();
          // The operator has nothing to debug here, only a setting to change.
          if (error.code === 'EADDRINUSE') {
            reject(new StartupError(`port ${port} is in use on ${config.host}: stop what listens there or set PORT to a free port`, { cause: error }));
          } else if (error.code === 'EACCES') {
            reject(new StartupError(`port ${port} on ${config.host} needs privileges this process lacks: set PORT to 1024 or above`, { cause: error }));
          } else reject(error);
        });
        server.listen(port, config.host, () => {
          restore();
          const bound = (server.address() as AddressInfo).port;
          services.logRetention.start();
          log.info(`Parley listening on http://localhost:${bound}/graphql`);
          resolve(bound);
        });
      })),
    async stop() {
      stopping = true;
      const registryClosed = sockets.close();
      // Its failure is reported by its step below, not as an unhandled rejection meanwhile.
      registryClosed.catch(() => {});
      const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
      server.closeIdleConnections();
      for (const socket of wss.clients) socket.close(SocketClose.GoingAway, 'Server shutting down');
      // Resolves once every socket has finished its close handshake.
      const socketsClosed = new Promise<void>((resolve) => wss.close(() => resolve()));
      const graceEnd = Date.now() + config.shutdownGraceMs;
      const grace = setTimeout(() => {
        for (const socket of wss.clients) socket.terminate();
        server.closeAllConnections();
      }, config.shutdownGraceMs);
      await Promise.all([httpClosed, socketsClosed]);
      clearTimeout(grace);

      // The remaining steps wait on Redis or the database, which may not
      // answer: ioredis queues commands (QUIT included) for as long as it
      // reconnects, and a pool waits for queries in flight. Each step gets
      // what is left of the grace period, or at least a short slot after it,
      // but none runs past forceEnd. One that has not finished by then is
      // left behind, and stop() rejects naming it. A Redis step that Redis
      // did not answer drops the connections, which fails every command
      // queued on them, so the steps after it do not wait for Redis too.
      const stepMinMs = 1000;
      const forceEnd = graceEnd + 3000;
      const forced: string[] = [];
      const failed: string[] = [];
      const dropRedis = () => pubsub.disconnect?.();
      // A step can be stuck on the database with Redis fine: then Redis keeps
      // its connections until its own close.
      const dropRedisIfDown = () => {
        if (pubsub.redis && pubsub.redis.status !== 'ready') dropRedis();
      };
      const LATE = Symbol('late');
      const step = async (name: string, work: () => unknown, force?: () => void) => {
        const ms = Math.max(graceEnd - Date.now(), Math.min(stepMinMs, forceEnd - Date.now()), 0);
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<typeof LATE>((resolve) => (timer = setTimeout(() => resolve(LATE), ms)));
        try {
          if ((await Promise.race([Promise.resolve().then(work), late])) === LATE) {
            log.warn({ step: name, waitedMs: ms }, 'shutdown step did not finish in time; forcing it');
            forced.push(name);
            force?.();
          }
        } catch (error) {
          log.warn({ err: error, step: name }, 'shutdown step failed');
          failed.push(name);
        } finally {
          clearTimeout(timer);
        }
      };
      await step('socket registry', () => registryClosed, dropRedisIfDown);
      await step('log retention', () => services.logRetention.stop());
      await step('presence', () => services.presence.close(), dropRedisIfDown);
      await step('channel hub', () => services.hub.close());
      await step('auth', () => services.auth.close(), dropRedisIfDown);
      await step('pub/sub', () => pubsub.close(), dropRedis);
      await step('prisma', () => prisma.$disconnect());
      await step('database pool', () => pool.end());
      await step('embedded database', () => embedded?.stop());
      if (forced.length || failed.length) {
        const parts = [forced.length ? `${forced.join(', ')} did not finish in time` : '', failed.length ? `${failed.join(', ')} failed` : ''];
        throw new Error(`shutdown forced: ${parts.filter(Boolean).join('; ')}`);
      }
    },
  };
}

/**
 * The token of a socket: `connectionParams.authToken`, or an Authorization
 * header carried in the params, as GraphiQL and some clients send the Headers
 * tab in `connection_init` (`{ "Authorization": "Bearer …" }`).
 */
function socketToken(params: Record<string, unknown> | undefined): unknown {
  if (!params) return undefined;
  if (params.authToken !== undefined) return params.authToken;
  const headers = (typeof params.headers === 'object' && params.headers ? params.headers : params) as Record<string, unknown>;
  const header = headers.Authorization ?? headers.authorization;
  return typeof header === 'string' ? (bearerToken(header) ?? header) : undefined;
}

/**
 * RATE_LIMITED rather than BAD_USER_INPUT: the operation itself is fine and
 * succeeds once the client ends one of its others; it is a quota, like a rate.
 */
function tooManyOperations(max: number): GraphQLError {
  return new GraphQLError(`At most ${max} operations may run at once on one socket; complete one first`, {
    extensions: { code: 'RATE_LIMITED', max },
  });
}

function refusal(error: unknown, code: string): GraphQLError[] {
  if (error instanceof GraphQLError) return clientErrors([error], code);
  throw error;
}

/**
 * Parse and validation errors with the code HTTP gives them (there Yoga codes
 * them and maskError codes the query-limit ones; graphql-ws sends errors as
 * they are). Yoga's HTTP status hint means nothing on a socket.
 */
function clientErrors(errors: readonly GraphQLError[], code: string): GraphQLError[] {
  return errors.map((error) => {
    const { http: _http, ...extensions } = error.extensions as Record<string, unknown>;
    return new GraphQLError(error.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      originalError: error.originalError,
      extensions: { ...extensions, code: extensions.code ?? code },
    });
  });
}
