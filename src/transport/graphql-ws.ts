import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { GraphQLError, type DocumentNode } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { WebSocketLimits } from '../config.ts';
import { bearerToken, type Context } from '../schema/context.ts';
import { maskError, maskResult, operationError } from './errors.ts';
import type { RealtimeCounters } from '../ops/metrics.ts';
import type { SocketRegistry } from './sockets.ts';
import { attachLiveTransport } from './socket-delivery.ts';

export interface GraphqlWsDeps {
  server: Server;
  yoga: YogaServerInstance<{ wsToken?: string | null }, Context>;
  sockets: SocketRegistry;
  limits: WebSocketLimits;
  log: Logger;
  /** The app's maskError (counted when metrics are on). */
  mask?: typeof maskError;
  counters?: RealtimeCounters;
}

/**
 * graphql-ws on the HTTP server's `/graphql`: sockets are admitted by the
 * registry (token, per-user limit), and each operation runs through Yoga's
 * envelop (`getEnveloped`), so its plugins, limits and masking apply as over
 * HTTP. Returns the WebSocket server, which the app closes on stop.
 */
export function serveGraphqlWs({ server, yoga, sockets, limits, log, mask = maskError, counters }: GraphqlWsDeps): WebSocketServer {
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
        attachLiveTransport(contextValue, {
          socket: ctx.extra.socket,
          connection: ctx.extra.request.socket,
          id,
          mask: (result) => maskResult(result, log, contextValue.requestId, mask),
          maxBufferedBytes: limits.maxBufferedBytes,
          counters,
        });
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
  return wss;
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
