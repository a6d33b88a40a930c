import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, type DocumentNode, type ExecutionResult, type FormattedExecutionResult } from 'graphql';
import { CloseCode, handleProtocols, makeServer, type Server as ProtocolServer, type ServerOptions } from 'graphql-ws';
import type { Plugin, YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ChannelHub } from '../bus/channel-hub.ts';
import type { WebSocketLimits } from '../config.ts';
import { bearerToken, type Context } from '../schema/context.ts';
import { domainGraphQLError, type ErrorMasking } from './errors.ts';
import { FrameWriter, type FrameLink } from './frames.ts';
import { useSharedSubscriptionExecution } from './shared-execution.ts';
import { SocketDelivery } from './socket-delivery.ts';
import { SocketClose, type SocketRegistry } from './sockets.ts';
import type { ClientInfo } from '../services/viewer.ts';
import type { TokenClaims } from '../auth/tokens.ts';
import { DomainError } from '../services/errors.ts';
import type { RateLimits } from '../services/rate-limits.ts';
import { documentFor, type TrustedDocuments } from './trusted-documents.ts';

export interface GraphqlWsDeps {
  limits: WebSocketLimits;
  log: Logger;
  /** The app's error masking, the same Yoga is given. */
  errors: ErrorMasking;
  /** The hub whose deliveries the fast path's writes follow (see FrameWriter.delivered). */
  hub: Pick<ChannelHub, 'onDelivered'>;
  /** Counts live deliveries (metrics). */
  counters?: { liveDeliveries: number } | null;
  /** Connection attempts per address, refused inits per address, operations started per socket. */
  rateLimits: Pick<RateLimits, 'wsConnection' | 'wsInitFailed' | 'wsSubscribe'>;
  /** The client's address behind trusted proxies (TRUST_PROXY). */
  clientOf: (req: IncomingMessage) => ClientInfo;
  /** Documents by id, and the trusted-only rule (TRUSTED_DOCUMENTS); null: off. */
  trustedDocuments?: TrustedDocuments | null;
}

/** What graphql-ws' context carries for a Parley socket (`ctx.extra`). */
interface SocketExtra {
  socket: WebSocket;
  request: IncomingMessage;
  link: FrameLink;
  /** This socket's own key for its rate limit. */
  id: string;
  /** The session the registry admitted the socket for: its operations run as that session while it stands. */
  session?: TokenClaims;
}

type YogaInstance = YogaServerInstance<{ wsSession?: TokenClaims; req: IncomingMessage }, Context>;

/**
 * graphql-ws on the HTTP server's `/graphql`, on graphql-ws' protocol core
 * (`makeServer`) with Parley's own socket adapter: every frame a socket gets
 * goes through the app's FrameWriter, graphql-ws' messages and the live fast
 * path's alike. Sockets are admitted by the registry (token, per-user limit),
 * and each operation runs through Yoga's envelop (`getEnveloped`), so its
 * plugins, limits and masking apply as over HTTP.
 *
 * Made before Yoga, whose plugin list takes `plugin` (the shared execution of
 * live events, delivered to sockets by this transport); `listen` then attaches
 * the WebSocket server to the HTTP server.
 */
export class GraphqlWsTransport {
  /** Yoga's plugin for subscriptions (shared-execution.ts), bound to this transport's sockets. */
  readonly plugin: Plugin<Context>;
  private readonly frames: FrameWriter;
  private readonly delivery: SocketDelivery;
  private wss: WebSocketServer | null = null;

  constructor(private readonly deps: GraphqlWsDeps) {
    this.frames = new FrameWriter({ maxBufferedBytes: deps.limits.maxBufferedBytes, counters: deps.counters });
    this.delivery = new SocketDelivery(this.frames);
    this.plugin = useSharedSubscriptionExecution(this.delivery);
    deps.hub.onDelivered(() => this.frames.delivered());
  }

  /** Open sockets (metrics). */
  get openSockets(): number {
    return this.wss?.clients.size ?? 0;
  }

  /** Serves graphql-ws on `server` at Yoga's endpoint, admitting sockets through `sockets`. */
  listen(server: Server, yoga: YogaInstance, sockets: SocketRegistry): void {
    const { limits, log } = this.deps;
    const wss = new WebSocketServer({
      server,
      path: yoga.graphqlEndpoint,
      maxPayload: limits.maxPayloadBytes,
      // Off (ws' default for servers): frames are written to the connection
      // directly, which a compressing sender would reorder (see FrameLink).
      perMessageDeflate: false,
      handleProtocols: (protocols) => handleProtocols(protocols),
      // Refused before the upgrade, with 429 and Retry-After: too many
      // connections from the address, or too many refused inits. Should the
      // limiter itself fail, the connection is accepted (its store is memory
      // or Redis with a memory fallback; this is a last resort).
      verifyClient: (info, done) => {
        const ip = this.deps.clientOf(info.req).ip;
        this.deps.rateLimits.wsConnection(ip).then(
          (waitMs) =>
            waitMs > 0 ? done(false, 429, 'Too Many Requests', { 'Retry-After': String(Math.ceil(waitMs / 1000)) }) : done(true),
          (error: unknown) => {
            log.warn({ err: error }, 'websocket connection limit could not be checked');
            done(true);
          },
        );
      },
    });
    this.wss = wss;
    // ws passes the HTTP server's errors on. A listen failure is the app's
    // start() to report, as the operator's to fix; anything else is logged.
    wss.on('error', (error: NodeJS.ErrnoException) => {
      if (error.syscall !== 'listen') log.error({ err: error }, 'websocket server error');
    });
    const protocol = makeServer<Record<string, unknown>, SocketExtra>(this.options(yoga, sockets));
    wss.on('connection', (socket, request) => this.opened(protocol, socket, request));
  }

  /**
   * Asks every socket to close (1001, going away) and resolves once each has
   * finished its close handshake; the WebSocket server accepts no more.
   */
  close(): Promise<void> {
    const { wss } = this;
    if (!wss) return Promise.resolve();
    for (const socket of wss.clients) socket.close(SocketClose.GoingAway, 'Server shutting down');
    return new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  /** Cuts every socket still open (the grace period is over). */
  terminate(): void {
    for (const socket of this.wss?.clients ?? []) socket.terminate();
  }

  /**
   * One accepted socket, handed to graphql-ws' protocol core. What graphql-ws'
   * own ws adapter (`graphql-ws/use/ws`) does, with Parley's choices: frames
   * go through the FrameWriter; a socket's 'error' (ws emits one only for
   * the client's protocol violations, after closing the socket with the
   * matching code: 1009, 1002, ...) is logged at debug, not as an internal
   * error of ours; a failure while handling a message closes with 4500.
   */
  private opened(protocol: ProtocolServer<SocketExtra>, socket: WebSocket, request: IncomingMessage): void {
    const { log, limits } = this.deps;
    const link = this.frames.open(socket, request.socket);
    socket.on('error', (error) => log.debug({ err: error }, 'websocket closed for a protocol error'));
    const stopPings = keepAlive(socket, limits.pingIntervalMs);
    const closed = protocol.opened(
      {
        protocol: socket.protocol,
        send: (data) => this.frames.send(link, data),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data) => {
            handle(String(data)).catch((error: unknown) => {
              // A socket already closing has nothing left to tell.
              if (socket.readyState !== socket.OPEN) return log.debug({ err: error }, 'websocket message handling ended with the socket');
              log.error({ err: error }, 'internal error while handling a websocket message');
              socket.close(CloseCode.InternalServerError, closeReason(error));
            });
          }),
      },
      { socket, request, link, id: randomUUID() },
    );
    socket.once('close', (code, reason) => {
      stopPings();
      closed(code, String(reason)).catch((error: unknown) => log.error({ err: error }, 'closing a websocket’s operations failed'));
    });
  }

  private options(yoga: YogaInstance, sockets: SocketRegistry): ServerOptions<Record<string, unknown>, SocketExtra> {
    const { limits, errors } = this.deps;
    const { delivery } = this;
    return {
      connectionInitWaitTimeout: limits.connectionInitTimeoutMs,
      // The registry closes refused sockets itself, with the code that fits
      // (4401, 4403 or 4429); false only keeps graphql-ws from acknowledging.
      // Each operation then checks that the session still stands and its user is active.
      onConnect: async (ctx) => {
        const session = await sockets.admit(ctx.extra.socket, socketToken(ctx.connectionParams));
        if (session === null) {
          if (sockets.refusedForCredentials(ctx.extra.socket)) {
            const ip = this.deps.clientOf(ctx.extra.request).ip;
            this.deps.rateLimits
              .wsInitFailed(ip)
              .catch((error: unknown) => this.deps.log.warn({ err: error }, 'could not count a refused connection_init'));
          }
          return false;
        }
        ctx.extra.session = session;
        return true;
      },
      // Yoga's HTTP status hint (a refused write's 429) means nothing on a socket.
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors?.some((error) => error.extensions?.http) ? withoutHttp(result) : undefined,
      execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof import('graphql').subscribe }).subscribe(args),
      onSubscribe: async (ctx, id, params) => {
        // graphql-ws has already counted this operation in `subscriptions`.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerSocket) {
          return [tooManyOperations(limits.maxSubscriptionsPerSocket)];
        }
        try {
          await this.deps.rateLimits.wsSubscribe(ctx.extra.id);
        } catch (error) {
          if (error instanceof DomainError) return clientErrors([domainGraphQLError(error)], 'RATE_LIMITED');
          throw error;
        }
        // Yoga's persisted-operations plugin works on HTTP requests only: the same ids and rule here.
        const trusted = this.deps.trustedDocuments;
        const query = trusted ? documentFor(trusted, params) : params.query;
        if (typeof query !== 'string') return clientErrors([query], 'BAD_USER_INPUT');
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: { ...params, query },
          wsSession: ctx.extra.session,
        });
        // A GraphQLError thrown out of onSubscribe would close the whole socket
        // with 4500; the client gets it as the operation's error instead.
        let document: DocumentNode;
        let validationErrors: readonly GraphQLError[];
        try {
          document = parse(query);
        } catch (error) {
          return refusal(error, 'GRAPHQL_PARSE_FAILED');
        }
        try {
          validationErrors = validate(schema, document);
        } catch (error) {
          // The query-limit rules (aliases, depth, cost) throw theirs.
          return refusal(error, 'BAD_USER_INPUT');
        }
        if (validationErrors.length) return clientErrors(validationErrors, 'GRAPHQL_VALIDATION_FAILED');
        let contextValue: Context;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          return [errors.operationError(error, randomUUID())];
        }
        delivery.attach(contextValue, { link: ctx.extra.link, id, mask: (result) => errors.result(result, contextValue.requestId) });
        return {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue,
          rootValue: { execute, subscribe },
        };
      },
    };
  }
}

/**
 * The ws heartbeat: a ping every interval, and terminate() if its pong has
 * not come back one interval later. Returns what stops it.
 */
function keepAlive(socket: WebSocket, intervalMs: number): () => void {
  if (!(intervalMs > 0 && Number.isFinite(intervalMs))) return () => {};
  let pongWait: NodeJS.Timeout | null = null;
  const interval = setInterval(() => {
    if (socket.readyState !== socket.OPEN) return;
    pongWait = setTimeout(() => socket.terminate(), intervalMs);
    socket.once('pong', () => {
      if (pongWait) clearTimeout(pongWait);
      pongWait = null;
    });
    socket.ping();
  }, intervalMs);
  return () => {
    clearInterval(interval);
    if (pongWait) clearTimeout(pongWait);
  };
}

/** A close reason has at most 123 bytes; the error's message outside production, as graphql-ws' adapter does. */
function closeReason(error: unknown): string {
  const fallback = 'Internal server error';
  if (process.env.NODE_ENV === 'production') return fallback;
  const message = error instanceof Error ? error.message : String(error);
  return Buffer.byteLength(message) <= 123 ? message : fallback;
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

function withoutHttp(result: ExecutionResult): FormattedExecutionResult {
  return {
    ...result,
    errors: result.errors?.map((error) => {
      const { http: _http, ...extensions } = error.toJSON().extensions ?? {};
      return { ...error.toJSON(), extensions };
    }),
  };
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
