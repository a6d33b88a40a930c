import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createFetch } from '@whatwg-node/fetch';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { createYoga } from 'graphql-yoga';
import pino, { type Logger } from 'pino';
import { TokenService, type TokenClaims } from './auth/tokens.ts';
import type { Config } from './config.ts';
import { bearerToken, createContext, type Context } from './schema/context.ts';
import { createPool, createPrisma } from './db/client.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { createErrorMasking } from './transport/errors.ts';
import { renderGraphiQL } from './graphiql.ts';
import { isMultipart, refuseBody, refuseUpload, type UploadRefusal } from './http-body.ts';
import { createOpsRoutes } from './ops/http.ts';
import { createMetrics } from './ops/metrics.ts';
import { createReadiness } from './ops/readiness.ts';
import { createPubSub } from './bus/pubsub.ts';
import { SocketRegistry } from './transport/sockets.ts';
import { schema } from './schema/index.ts';
import { createServices, type Services } from './services/index.ts';
import { BoundedShutdown } from './shutdown.ts';
import { GraphqlWsTransport } from './transport/graphql-ws.ts';
import { HttpTransport } from './transport/http.ts';
import { createFileRoutes } from './transport/files.ts';
import { createAuditExportRoute } from './transport/audit-export.ts';
import { createExportDownloadRoute } from './transport/export-download.ts';
import { securityHeaders } from './transport/security-headers.ts';
import { clientAddressResolver } from './transport/client-address.ts';
import { useWriteLimits } from './transport/write-limits.ts';
import { httpPlugins as trustedDocumentPlugins, loadTrustedDocuments } from './transport/trusted-documents.ts';

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

/** Wires config -> database -> pub/sub -> services -> GraphQL over HTTP and graphql-ws on one port. */
export async function buildApp(config: Config, options: { log?: Logger; countQueries?: boolean } = {}): Promise<App> {
  const log = options.log ?? pino({ level: config.logLevel });
  // Read before anything starts: a manifest that cannot be used stops the start.
  const trusted = config.trustedDocuments ? loadTrustedDocuments(config.trustedDocuments) : null;
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
  const metrics = config.metrics.enabled ? createMetrics({ pool, openSockets: (): number => graphqlWs.openSockets }) : null;
  const pubsub = createPubSub(config.redisUrl, config.redisPrefix, log, metrics?.counters);
  const tokens = new TokenService(config.jwtSecret, config.accessTokenTtlSeconds);
  const services = createServices({ prisma, pubsub, tokens, config, log });
  services.hub.counters = metrics?.counters ?? null;
  if (metrics) services.rateLimits.onRefused = (limit) => metrics.rateLimited.inc({ limit });
  if (metrics) {
    services.messageRetention.observer = {
      run: (outcome) => metrics.retentionRuns.inc({ outcome }),
      purged: (reason, count) => metrics.retentionPurged.inc({ reason }, count),
    };
  }
  const errors = createErrorMasking(log, metrics?.counting);
  const clientOf = clientAddressResolver(config.trustProxy);
  const graphqlWs = new GraphqlWsTransport({
    limits: config.websocket,
    log,
    errors,
    hub: services.hub,
    counters: metrics?.counters,
    trustedDocuments: trusted,
    rateLimits: services.rateLimits,
    clientOf,
  });

  // `req`: the HTTP request, or a socket's upgrade request (graphql-ws.ts).
  const yoga = createYoga<{ wsSession?: TokenClaims; req: IncomingMessage }, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: config.graphiql ? { subscriptionsProtocol: 'WS' } : false,
    renderGraphiQL,
    landingPage: false,
    // A request may name its document by id (TRUSTED_DOCUMENTS) beside a text, which then wins.
    extraParamNames: trusted ? ['documentId'] : [],
    // Bodies are bounded by their Content-Length before Yoga sees them (refuseBody).
    maxRequestBodySize: false,
    // Multipart uploads: busboy enforces these while the body streams in, so
    // a file over the limit is refused before the rest of it is read.
    fetchAPI: createFetch({
      formDataLimits: {
        fileSize: config.uploads.maxFileBytes,
        files: config.uploads.maxFilesPerRequest,
        fieldSize: config.uploads.maxFieldBytes,
        fields: 16,
        parts: config.uploads.maxFilesPerRequest + 16,
        headerSize: config.uploads.maxPartHeaderBytes,
      },
    }),
    logging: errors.logger,
    maskedErrors: { maskError: errors.maskError },
    plugins: [
      errors.plugin,
      // A multipart (or other "simple") request is one a page on any site could
      // make a browser send without a preflight: it must carry this header,
      // which such a page cannot set. JSON requests are preflighted anyway.
      useCSRFPrevention({ requestHeaders: ['x-graphql-yoga-csrf'] }),
      // Documents by id, and with TRUSTED_DOCUMENTS_ONLY nothing else (trusted-documents.ts).
      ...(trusted ? trustedDocumentPlugins(trusted) : []),
      // Production: the schema is the first-party clients' business. Field
      // suggestions ("did you mean …") would give it away without introspection.
      ...(config.introspection ? [] : [useDisableIntrospection(), blockFieldSuggestionsPlugin()]),
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
      useWriteLimits(),
      graphqlWs.plugin,
    ],
    context: async (initial) => {
      const requestId = initial.request?.headers.get('x-request-id') ?? randomUUID();
      // A socket's operations run as the session the socket was admitted with (graphql-ws.ts).
      const credentials = initial.wsSession
        ? { session: initial.wsSession }
        : { token: bearerToken(initial.request.headers.get('authorization')) };
      return createContext(services, credentials, requestId, clientOf(initial.req));
    },
  });

  const secure = securityHeaders(config.production);
  const files = createFileRoutes({ attachments: services.attachments, urls: services.fileUrls, clock: services.clock, log });
  const auditExport = createAuditExportRoute({
    viewerFromToken: (token) => services.auth.viewerFromToken(token),
    audit: services.audit,
    log,
  });
  const exportDownloads = createExportDownloadRoute({ exports: services.exports, log });
  const readiness = createReadiness({ pool, pubsub, files: services.attachments.store });
  const ops = createOpsRoutes({ config, metrics, readiness, log, stopping: () => http.stopping });
  const http: HttpTransport = new HttpTransport({
    keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs,
    handle: (req, res) => {
      secure(res);
      if (ops.handle(req, res)) return;
      if (files.handle(req, res)) return;
      if (auditExport.handle(req, res)) return;
      if (exportDownloads.handle(req, res)) return;
      if (refuseBody(req, res, bodyLimit(req))) return;
      if (!isMultipart(req)) return void yoga(req, res);
      refuseUpload(req, res, uploadRefusal).then(
        (refused) => void (refused || yoga(req, res)),
        // The database could not say (an outage): Yoga's own token check
        // meets the same failure and answers SERVICE_UNAVAILABLE.
        () => void yoga(req, res),
      );
    },
  });
  http.server.once('close', () => ops.close());
  // A multipart request may carry its files besides the usual fields; each
  // file's own bound is busboy's, while it streams.
  const multipartMax =
    config.httpMaxBodyBytes + config.uploads.maxFilesPerRequest * (config.uploads.maxFileBytes + config.uploads.maxPartHeaderBytes);
  const bodyLimit = (req: IncomingMessage) => (isMultipart(req) ? multipartMax : config.httpMaxBodyBytes);
  const uploadRefusal = async (authorization: string | undefined): Promise<UploadRefusal | null> => {
    const token = bearerToken(authorization ?? null);
    const viewer = token === null ? null : await services.auth.viewerFromToken(token);
    if (!viewer) return { reason: 'anonymous' };
    const waitMs = await services.rateLimits.uploadWait(viewer.id);
    return waitMs > 0
      ? { reason: 'rate', retryAfterMs: waitMs, message: `Too many uploads; retry in ${Math.ceil(waitMs / 1000)} s` }
      : null;
  };

  const sockets = new SocketRegistry(services.auth, pubsub, config.websocket.maxSocketsPerUser, log, services.presence);
  graphqlWs.listen(http.server, yoga, sockets);

  return {
    services,
    log,
    databaseUrl,
    queryCount: () => queries,
    async start(port = config.port) {
      await ops.listen();
      await services.rateLimits.ready();
      const bound = await http.listen(port, config.host);
      services.logRetention.start();
      services.messageRetention.start();
      services.fileCleanup.start();
      await services.exports.start();
      // A search language change left half done by a stopped process goes on.
      await services.search.start();
      log.info(`Parley listening on http://localhost:${bound}/graphql`);
      return bound;
    },
    async stop() {
      const registryClosed = sockets.close();
      // Its failure is reported by its step below, not as an unhandled rejection meanwhile.
      registryClosed.catch(() => {});
      const httpClosed = http.close();
      // Resolves once every socket has finished its close handshake.
      const socketsClosed = graphqlWs.close();
      const graceEnd = Date.now() + config.shutdownGraceMs;
      const grace = setTimeout(() => {
        graphqlWs.terminate();
        http.closeAllConnections();
      }, config.shutdownGraceMs);
      await Promise.all([httpClosed, socketsClosed]);
      clearTimeout(grace);

      // A Redis step that Redis did not answer drops the connections, which
      // fails every command queued on them, so the steps after it do not wait
      // for Redis too. A step can be stuck on the database with Redis fine:
      // then Redis keeps its connections until its own close.
      const shutdown = new BoundedShutdown(log, graceEnd);
      const dropRedis = () => pubsub.disconnect?.();
      const dropRedisIfDown = () => {
        if (pubsub.redis && pubsub.redis.status !== 'ready') dropRedis();
      };
      await shutdown.step('socket registry', () => registryClosed, dropRedisIfDown);
      await shutdown.step('log retention', () => services.logRetention.stop());
      await shutdown.step('message retention', () => services.messageRetention.stop());
      await shutdown.step('file cleanup', () => services.fileCleanup.stop());
      await shutdown.step('exports', () => services.exports.stop());
      await shutdown.step('search re-indexing', () => services.search.stop());
      await shutdown.step('presence', () => services.presence.close(), dropRedisIfDown);
      await shutdown.step('channel hub', () => services.hub.close());
      await shutdown.step('auth', () => services.auth.close(), dropRedisIfDown);
      await shutdown.step('sessions', () => services.sessions.close(), dropRedisIfDown);
      await shutdown.step('custom fields', () => services.customFields.close(), dropRedisIfDown);
      await shutdown.step('pub/sub', () => pubsub.close(), dropRedis);
      await shutdown.step('prisma', () => prisma.$disconnect());
      await shutdown.step('database pool', () => pool.end());
      await shutdown.step('embedded database', () => embedded?.stop());
      await shutdown.step('files', () => services.attachments.close());
      await shutdown.step('rate limits', () => services.rateLimits.close());
      shutdown.finish();
    },
  };
}
