import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { GqlResult } from './app.ts';
import { queryText, type Operation } from './operation.ts';

/** A graphql-ws client authenticated the way browsers are: connectionParams.authToken. */
export function wsClient(httpUrl: string, token: string | null, options: { keepOpen?: boolean } = {}): Client {
  return createClient({
    url: httpUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authToken: token } : {},
    retryAttempts: 0,
    // keepOpen: one socket for the client's life, as a live view holds it.
    lazy: !options.keepOpen,
  });
}

/** Runs one query or mutation over the socket and returns its single result (typed as GqlSender types it). */
export function wsRequest<R, V>(client: Client, query: TypedDocumentNode<R, V>, variables?: V): Promise<GqlResult<R>>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped, as GqlSender's string overload
export function wsRequest<T = any>(client: Client, query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>>;
export function wsRequest(client: Client, query: Operation<unknown, unknown>, variables: unknown = {}): Promise<GqlResult<unknown>> {
  return new Promise((resolve, reject) => {
    let result: GqlResult<unknown> | undefined;
    client.subscribe(
      { query: queryText(query), variables: variables as Record<string, unknown> },
      {
        next: (value) => (result = value as GqlResult<unknown>),
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error('completed without a result'))),
      },
    );
  });
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface LiveSocket {
  client: Client;
  /** true once the server acknowledged `connection_init`; false if the socket closed first. */
  acked: Promise<boolean>;
  /** How the socket ended. */
  closed: Promise<CloseInfo>;
}

/** A graphql-ws client that connects at once (no retries) and reports how its socket ends. */
export function liveSocket(httpUrl: string, connectionParams: Record<string, unknown>): LiveSocket {
  let acked!: (value: boolean) => void;
  let closed!: (value: CloseInfo) => void;
  const result = {
    acked: new Promise<boolean>((resolve) => (acked = resolve)),
    closed: new Promise<CloseInfo>((resolve) => (closed = resolve)),
  };
  const client = createClient({
    url: httpUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
    lazy: false,
    // The close is what the tests look at; graphql-ws would also log it.
    onNonLazyError: () => {},
    on: {
      connected: () => acked(true),
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string | Buffer };
        acked(false);
        closed({ code, reason: String(reason) });
      },
    },
  });
  return { client, ...result };
}

/** A graphql-transport-ws message from the server; its payload is what the test expects of the message it waits for. */
export interface ServerMessage<P = unknown> {
  type: string;
  id?: string;
  payload: P;
}

/** A plain `ws` socket speaking graphql-transport-ws by hand, for what a well-behaved client never does. */
export interface RawSocket {
  ws: WebSocket;
  closed: Promise<CloseInfo>;
  send(message: unknown): void;
  /** The next message (received or still to come) matching `test`. */
  next<P = unknown>(test: (message: ServerMessage) => boolean): Promise<ServerMessage<P>>;
}

export async function rawSocket(httpUrl: string, options: { autoPong?: boolean } = {}): Promise<RawSocket> {
  const ws = new WebSocket(httpUrl.replace(/^http/, 'ws'), 'graphql-transport-ws', { autoPong: options.autoPong ?? true });
  const received: ServerMessage[] = [];
  const waiters: {
    test: (message: ServerMessage) => boolean;
    resolve: (message: ServerMessage) => void;
    reject: (error: Error) => void;
  }[] = [];
  ws.on('message', (data) => {
    const message = JSON.parse(String(data)) as ServerMessage;
    const waiter = waiters.find((w) => w.test(message));
    if (waiter) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(message);
    } else {
      received.push(message);
    }
  });
  const closed = new Promise<CloseInfo>((resolve) =>
    ws.once('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      for (const waiter of waiters.splice(0)) waiter.reject(new Error(`socket closed (${code}) before the awaited message`));
    }),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // Failures show up as the close code, which the tests check.
  ws.on('error', () => {});
  return {
    ws,
    closed,
    send: (message) => ws.send(JSON.stringify(message)),
    next: <P>(test: (message: ServerMessage) => boolean) => {
      const index = received.findIndex(test);
      if (index >= 0) return Promise.resolve(received.splice(index, 1)[0] as ServerMessage<P>);
      if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('socket closed'));
      return new Promise<ServerMessage<P>>((resolve, reject) =>
        waiters.push({ test, resolve: resolve as (message: ServerMessage) => void, reject }),
      );
    },
  };
}

/** Sends `connection_init` with the token and waits for the acknowledgement. */
export async function rawConnect(httpUrl: string, token: string, options: { autoPong?: boolean } = {}): Promise<RawSocket> {
  const raw = await rawSocket(httpUrl, options);
  raw.send({ type: 'connection_init', payload: { authToken: token } });
  await raw.next((m) => m.type === 'connection_ack');
  return raw;
}
