import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { startServer, type TestServer } from './helpers/app.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The request went out on a connection an earlier request had used. */
  reused: boolean;
  socket: Socket;
}

function query(url: string, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, reused: req.reusedSocket, socket: req.socket! }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ query: '{ __typename }' }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HTTP keep-alive', () => {
  it('defaults to 65 s, above the 60 s idle timeout common to load balancers', async () => {
    expect(loadConfig({ JWT_SECRET: 'x'.repeat(16) }).httpKeepAliveTimeoutMs).toBe(65_000);
    const server = await startServer();
    servers.push(server);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const answer = await query(server.url, agent);
    expect(answer.headers['keep-alive']).toBe('timeout=65');
    agent.destroy();
  });

  // Node's Agent reads the server's `Keep-Alive: timeout=N` and drops a pooled
  // socket a second before it, so the configured timeout must be a few seconds
  // for the agent to keep the socket at all.
  it('a pooled connection reused after an idle pause is served on the same socket', async () => {
    const server = await startServer({ httpKeepAliveTimeoutMs: 3000 });
    servers.push(server);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await query(server.url, agent);
    expect(first.status).toBe(200);
    expect(first.reused).toBe(false);
    expect(first.headers['keep-alive']).toBe('timeout=3');

    await sleep(1000);
    const second = await query(server.url, agent);
    expect(second.reused).toBe(true);
    expect(second.socket).toBe(first.socket);
    expect(second.status).toBe(200);
    expect(JSON.parse(second.body)).toEqual({ data: { __typename: 'Query' } });
    agent.destroy();
  });

  it("an idle connection is closed by the server after the configured timeout, not Node's 5 s", async () => {
    const server = await startServer({ httpKeepAliveTimeoutMs: 3000 });
    servers.push(server);
    const socket = connect(server.port, '127.0.0.1');
    let answered = 0;
    const ended = new Promise<number>((resolve) => socket.once('end', () => resolve(Date.now())));
    socket.on('data', () => void (answered ||= Date.now()));
    const body = JSON.stringify({ query: '{ __typename }' });
    socket.write(`POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    const idle = (await ended) - answered;
    socket.destroy();
    expect(answered).toBeGreaterThan(0);
    expect(idle).toBeGreaterThan(2500);
    expect(idle).toBeLessThan(4500);
  });

  it('stop() closes an idle keep-alive connection at once instead of waiting out the timeout', async () => {
    const server = await startServer({ httpKeepAliveTimeoutMs: 60_000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const { socket } = await query(server.url, agent);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));

    const started = Date.now();
    const stopped = server.stop();
    await closed;
    expect(Date.now() - started).toBeLessThan(1000);
    await stopped;
    agent.destroy();
  });
});
