import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { FrameWriter, type FrameLink } from '../src/transport/frames.ts';

// The FrameWriter on its own, on a real ws server and client over loopback:
// frames as ws' clients read them, and every way a frame avoids the direct
// write or is held back.

interface Pair {
  /** The server side, as the writer knows it. */
  link: FrameLink;
  client: WebSocket;
  /** Text messages the client received, in order. */
  received: string[];
  /** Resolves with the client's close code. */
  closed: Promise<number>;
  /** Resolves once the client has `count` messages. */
  receivedCount(count: number): Promise<string[]>;
}

const servers: { http: Server; wss: WebSocketServer }[] = [];
afterEach(async () => {
  for (const { http, wss } of servers.splice(0)) {
    for (const socket of wss.clients) socket.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }
});

/** A server whose sockets the writer registers; `connect` opens a client and waits for both ends. */
async function serve(writer: FrameWriter, options: { perMessageDeflate?: boolean } = {}) {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: options.perMessageDeflate ?? false });
  servers.push({ http, wss });
  const links: FrameLink[] = [];
  const waiting: ((link: FrameLink) => void)[] = [];
  wss.on('connection', (socket, request) => {
    const link = writer.open(socket, request.socket);
    const waiter = waiting.shift();
    if (waiter) waiter(link);
    else links.push(link);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    async connect(): Promise<Pair> {
      const linked = new Promise<FrameLink>((resolve) => {
        const ready = links.shift();
        if (ready) resolve(ready);
        else waiting.push(resolve);
      });
      const client = new WebSocket(url, { perMessageDeflate: options.perMessageDeflate ?? false });
      const received: string[] = [];
      const counters: { count: number; resolve: (messages: string[]) => void }[] = [];
      client.on('message', (data: RawData, isBinary) => {
        expect(isBinary).toBe(false);
        received.push(String(data));
        for (const counter of counters.filter((c) => received.length >= c.count)) {
          counters.splice(counters.indexOf(counter), 1);
          counter.resolve(received);
        }
      });
      const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        client.once('open', () => resolve());
        client.once('error', reject);
      });
      const link = await linked;
      return {
        link,
        client,
        received,
        closed,
        receivedCount: (count) =>
          received.length >= count ? Promise.resolve(received) : new Promise((resolve) => counters.push({ count, resolve })),
      };
    },
  };
}

const prefix = (id: string) => Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('FrameWriter', () => {
  it('writes graphql-ws messages and next frames of every length form intact and in order', async () => {
    const writer = new FrameWriter({ maxBufferedBytes: 10_000_000 });
    const { link, receivedCount } = await (await serve(writer)).connect();
    expect(link.direct).toBe(true);
    const bodies = ['é', 'x'.repeat(1000), 'ü€😀'.repeat(9000)];
    await writer.send(link, JSON.stringify({ type: 'connection_ack' }));
    for (const body of bodies) {
      const result = { data: { body } };
      writer.next(
        link,
        prefix('op'),
        writer.payload(result, () => JSON.stringify(result)),
      );
    }
    await writer.send(link, JSON.stringify({ id: 'op', type: 'complete' }));
    const messages = (await receivedCount(5)).map((m) => JSON.parse(m) as { type: string; payload?: { data: { body: string } } });
    expect(messages.map((m) => m.type)).toEqual(['connection_ack', 'next', 'next', 'next', 'complete']);
    expect(messages.slice(1, 4).map((m) => m.payload!.data.body)).toEqual(bodies);
    expect(Buffer.byteLength(bodies[2]!)).toBeGreaterThan(65_536);
  });

  it('serializes a result once for all the sockets it goes to', async () => {
    const writer = new FrameWriter({ maxBufferedBytes: 10_000_000 });
    const server = await serve(writer);
    const pairs = [await server.connect(), await server.connect(), await server.connect()];
    const result = { data: { seq: 1 } };
    let serialized = 0;
    const payloads = pairs.map((pair, i) => {
      const payload = writer.payload(result, () => (serialized++, JSON.stringify(result)));
      writer.next(pair.link, prefix(`op${i}`), payload);
      return payload;
    });
    expect(serialized).toBe(1);
    expect(new Set(payloads).size).toBe(1);
    const received = await Promise.all(pairs.map((pair) => pair.receivedCount(1)));
    expect(received.map((messages) => JSON.parse(messages[0]!))).toEqual(
      pairs.map((_, i) => ({ id: `op${i}`, type: 'next', payload: result })),
    );
  });

  it('falls back to ws’ own send when permessage-deflate was negotiated, keeping the order', async () => {
    const writer = new FrameWriter({ maxBufferedBytes: 10_000_000 });
    const { link, receivedCount } = await (await serve(writer, { perMessageDeflate: true })).connect();
    expect(link.socket.extensions).toContain('permessage-deflate');
    expect(link.direct).toBe(false);
    const sent = writer.send(link, JSON.stringify({ type: 'connection_ack' }));
    // Large enough for ws to compress it (asynchronously): a direct write would overtake it.
    const big = { data: { body: 'y'.repeat(5000) } };
    writer.next(
      link,
      prefix('a'),
      writer.payload(big, () => JSON.stringify(big)),
    );
    writer.next(
      link,
      prefix('b'),
      writer.payload({ data: null }, () => '{"data":null}'),
    );
    await sent;
    const messages = (await receivedCount(3)).map((m) => JSON.parse(m) as { id?: string; type: string });
    expect(messages.map((m) => `${m.type}:${m.id ?? ''}`)).toEqual(['connection_ack:', 'next:a', 'next:b']);
  });

  it('holds next frames until the turn ends, and sends nothing once the socket is gone', async () => {
    const writer = new FrameWriter({ maxBufferedBytes: 10_000_000 });
    const server = await serve(writer);
    const kept = await server.connect();
    const gone = await server.connect();
    for (const pair of [kept, gone]) writer.next(pair.link, prefix('op'), Buffer.from('{"data":1}'));
    expect(kept.link.connection.writableCorked).toBe(1);
    // The socket goes while its frame is held for the turn.
    gone.link.socket.terminate();
    expect(() => writer.next(gone.link, prefix('op'), Buffer.from('{"data":2}'))).not.toThrow();
    await expect(writer.send(gone.link, '{"type":"pong"}')).resolves.toBeUndefined();
    expect(await gone.closed).toBe(1006);
    await nextTick();
    expect(kept.link.connection.writableCorked).toBe(0);
    expect((await kept.receivedCount(1)).map((m) => JSON.parse(m))).toEqual([{ id: 'op', type: 'next', payload: { data: 1 } }]);
    expect(gone.received).toEqual([]);
  });

  it('closes a socket whose unsent data passes maxBufferedBytes with 1013', async () => {
    const writer = new FrameWriter({ maxBufferedBytes: 100 });
    const { link, closed } = await (await serve(writer)).connect();
    writer.next(link, prefix('op'), Buffer.from(JSON.stringify({ data: 'small' })));
    expect(link.socket.readyState).toBe(WebSocket.OPEN);
    // Held for the turn, so it counts as unsent: past the cap at once.
    writer.next(link, prefix('op'), Buffer.from(JSON.stringify({ data: 'z'.repeat(200) })));
    expect(link.socket.readyState).toBe(WebSocket.CLOSING);
    expect(await closed).toBe(1013);
  });

  it('the first delivery of a quiet turn goes out at once; after a busy turn, or past flushAtOnceMax, at the end of the turn', async () => {
    const writer = new FrameWriter({ maxBufferedBytes: 10_000_000, flushAtOnceMax: 2 });
    const server = await serve(writer);
    const pairs = [await server.connect(), await server.connect(), await server.connect()];
    const write = (count: number) => {
      for (const pair of pairs.slice(0, count)) writer.next(pair.link, prefix('op'), Buffer.from('{"data":0}'));
    };
    const corked = () => pairs.map((pair) => pair.link.connection.writableCorked);
    await nextTick();

    // Quiet turn: sent once the code that delivered has run (a microtask).
    write(2);
    writer.delivered();
    expect(corked()).toEqual([1, 1, 0]);
    await Promise.resolve();
    expect(corked()).toEqual([0, 0, 0]);

    // A second delivery in the same turn waits for its end, and makes the turn busy.
    write(1);
    writer.delivered();
    await Promise.resolve();
    expect(corked()).toEqual([1, 0, 0]);
    await nextTick();
    expect(corked()).toEqual([0, 0, 0]);

    // After the busy turn, the first delivery waits too; the turn after that is quiet again.
    write(1);
    writer.delivered();
    await Promise.resolve();
    expect(corked()).toEqual([1, 0, 0]);
    await nextTick();
    write(1);
    writer.delivered();
    await Promise.resolve();
    expect(corked()).toEqual([0, 0, 0]);
    await nextTick();

    // More connections held than flushAtOnceMax: the end of the turn.
    write(3);
    writer.delivered();
    await Promise.resolve();
    expect(corked()).toEqual([1, 1, 1]);
    await nextTick();
    expect(corked()).toEqual([0, 0, 0]);
  });
});
