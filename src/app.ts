import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import pino, { type Logger } from 'pino';
import { TokenService } from './auth/tokens.ts';
import type { Config } from './config.ts';
import { bearerToken, createContext, type Context } from './context.ts';
import { createPrisma } from './db/client.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { maskError, useUnexpectedErrorLog } from './errors.ts';
import { createPubSub } from './realtime/pubsub.ts';
import { schema } from './schema/index.ts';
import { createServices, type Services } from './services/index.ts';

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
  const prisma = createPrisma(databaseUrl, embedded ? 1 : config.databasePoolSize, options.countQueries ? () => void queries++ : undefined);
  const pubsub = createPubSub(config.redisUrl, config.redisPrefix, log);
  const tokens = new TokenService(config.jwtSecret, config.tokenTtlSeconds);
  const services = createServices({ prisma, pubsub, tokens, config, log });

  const yoga = createYoga<{ wsToken?: string | null }, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: config.graphiql ? { subscriptionsProtocol: 'WS' } : false,
    landingPage: false,
    logging: log,
    maskedErrors: { maskError },
    plugins: [
      useUnexpectedErrorLog(log),
      // Bounds on what one document may ask for, checked before execution. The
      // deepest real client query (channel > messages > node > parent > replies
      // > node > sender > organization) needs 10.
      maxTokensPlugin({ n: 2000 }),
      maxDepthPlugin({ n: 12, flattenFragments: true }),
      maxAliasesPlugin({ n: 20 }),
      costLimitPlugin({ maxCost: 5000 }),
    ],
    context: async (initial) => {
      const requestId = initial.request?.headers.get('x-request-id') ?? randomUUID();
      const token = initial.wsToken !== undefined ? initial.wsToken : bearerToken(initial.request.headers.get('authorization'));
      return createContext(services, token, requestId);
    },
  });

  const server: Server = createServer(yoga);
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  useServer<Record<string, unknown>, { token: string | null }>(
    {
      // A bad token closes the socket at once (4403); a good one is checked
      // again for every operation, so deactivation and role changes apply to
      // open sockets too.
      onConnect: async (ctx) => {
        const token = typeof ctx.connectionParams?.authToken === 'string' ? ctx.connectionParams.authToken : null;
        ctx.extra.token = token;
        return token === null || (await services.auth.viewerFromToken(token)) !== null;
      },
      execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof import('graphql').subscribe }).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          wsToken: ctx.extra.token,
        });
        const args = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        return errors.length ? errors : args;
      },
    },
    wss,
  );

  return {
    services,
    log,
    databaseUrl,
    queryCount: () => queries,
    start: (port = config.port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, config.host, () => {
          const bound = (server.address() as AddressInfo).port;
          log.info(`Parley listening on http://localhost:${bound}/graphql`);
          resolve(bound);
        });
      }),
    async stop() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.auth.close();
      await pubsub.close();
      await prisma.$disconnect();
      await embedded?.stop();
    },
  };
}
