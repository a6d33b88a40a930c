import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { GqlResult } from './app.ts';

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

/** Runs one query or mutation over the socket and returns its single result. */
export function wsRequest<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}): Promise<GqlResult<T>> {
  return new Promise((resolve, reject) => {
    let result: GqlResult<T> | undefined;
    client.subscribe<T>(
      { query, variables },
      {
        next: (value) => (result = value as GqlResult<T>),
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error('completed without a result'))),
      },
    );
  });
}
