// The benchmarks' GraphQL client: operations over HTTP POST (fetch for setup,
// keep-alive node:http for measured load) and subscriptions over graphql-ws,
// plus the setup mutations more than one benchmark makes.
import { request, type Agent } from 'node:http';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface Reply {
  status: number;
  text: string;
}

/**
 * POSTs a JSON body to a loopback server on a keep-alive agent. A server
 * closes a connection idle for its keep-alive timeout (5 s in Node), and a
 * request sent on it at that moment fails with a reset or a broken pipe; such
 * a request is sent once more on a new connection, as Node's documentation
 * advises (every body posted here is safe to repeat: sends carry their
 * clientMessageId, which makes them idempotent).
 */
export function postJson(
  agent: Agent,
  port: number,
  path: string,
  headers: Record<string, string>,
  body: string,
  retried = false,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (!retried && req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) {
        resolve(postJson(agent, port, path, headers, body, true));
      } else {
        reject(error);
      }
    });
    req.end(body);
  });
}

/** Why a reply is not a successful GraphQL result (its status or its errors), or null when it is one. */
export function replyFailure(reply: Reply): string | null {
  if (reply.status !== 200) return `HTTP ${reply.status}: ${reply.text.slice(0, 300)}`;
  const json = JSON.parse(reply.text) as { data?: unknown; errors?: unknown };
  if (json.errors || !json.data) return reply.text.slice(0, 300);
  return null;
}

/** The data of a successful GraphQL reply; throws with the reason otherwise. */
export function replyData<T>(reply: Reply): T {
  const problem = replyFailure(reply);
  if (problem) throw new Error(`GraphQL request failed: ${problem}`);
  return (JSON.parse(reply.text) as { data: T }).data;
}

/** One GraphQL operation over HTTP, with an optional bearer token; resolves with its data. */
export type Gql = <T>(query: string, variables?: Record<string, unknown>, token?: string) => Promise<T>;

/** A client for setup and one-off requests (fetch, no connection reuse to speak of): not for measured load. */
export function graphqlClient(url: string): Gql {
  return async (query, variables = {}, token) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return replyData({ status: response.status, text: await response.text() });
  };
}

/**
 * A graphql-ws client on its own socket to `httpUrl`'s /graphql, signed in
 * with `token`. It connects with its first subscription and never retries: a
 * benchmark counts a closed socket instead of hiding it.
 */
export function subscriptionClient(
  httpUrl: string,
  token: string | undefined,
  on: { connected: () => void; closed: (code: number | undefined) => void },
): Client {
  return createClient({
    url: `${httpUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authToken: token },
    lazy: true,
    retryAttempts: 0,
    on: {
      connected: () => on.connected(),
      closed: (event) => on.closed((event as { code?: number }).code),
    },
  });
}

/** Relay global ID -> raw uuid (SQL and the floors speak uuids). */
export const rawId = (globalId: string): string => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;

/** A new organization through the API: its owner's token and raw user id. */
export async function registerOrganization(
  gql: Gql,
  name: string,
  slug: string,
  password: string,
): Promise<{ token: string; userId: string }> {
  const { registerOrganization: owner } = await gql<{ registerOrganization: { token: string; user: { id: string } } }>(
    `mutation($input: RegisterOrganizationInput!) { registerOrganization(input: $input) { token user { id } } }`,
    { input: { name, slug, username: 'owner', displayName: 'Owner', password } },
  );
  return { token: owner.token, userId: rawId(owner.user.id) };
}

/** A GROUP channel made by `token`'s user; its global ID. */
export async function createGroupChannel(gql: Gql, token: string, name: string): Promise<string> {
  const { createChannel } = await gql<{ createChannel: { id: string } }>(
    `mutation($input: CreateChannelInput!) { createChannel(input: $input) { id } }`,
    { input: { kind: 'GROUP', name } },
    token,
  );
  return createChannel.id;
}
