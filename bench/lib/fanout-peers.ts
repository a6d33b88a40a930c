// The peers B3/B4 measure Parley's fan-out against. Socket.IO and the bare
// floor do only what a broadcast needs: no authentication, no membership
// check, nothing persisted. The first process of a pair takes the sends
// (POST /send), numbers them per room (one counter, so every subscriber can be
// checked for gaps like Parley's seq) and broadcasts through Redis to every
// process, itself included. The durable floor is the bare floor that first
// commits each message to PostgreSQL, as Parley does, and takes its number
// from the channel's seq.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server as SocketIoServer } from 'socket.io';
import pg from 'pg';
import { WebSocketServer, type WebSocket } from 'ws';
import { floorStatement } from './floor.ts';

export interface PeerOptions {
  redisUrl: string;
  /** Unique per run: Redis channel names and the adapter's key start with it. */
  prefix: string;
  /** The durable floor: commit each message (one statement, see floorStatement) before broadcasting it. */
  durable?: DurableOptions;
}

export interface DurableOptions {
  databaseUrl: string;
  poolSize: number;
  organizationId: string;
  senderId: string;
}

export interface RunningPeer {
  port: number;
  stop(): Promise<void>;
}

/** What the sender posts and what every subscriber receives, shaped like Parley's MessageAddedEvent. */
export interface PeerEvent {
  seq: number;
  message: { id: string; body: string; createdAt: string };
}

function readJson(req: IncomingMessage): Promise<{ room: string; body: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

type Broadcast = (room: string, event: PeerEvent) => Promise<unknown> | unknown;
/** Takes one send: numbers it, broadcasts it, resolves with its seq. */
type Send = (room: string, body: string) => Promise<number>;

function numberInMemory(broadcast: Broadcast): Send {
  const seqs = new Map<string, number>();
  return async (room, body) => {
    const seq = (seqs.get(room) ?? 0) + 1;
    seqs.set(room, seq);
    await broadcast(room, { seq, message: { id: randomUUID(), body, createdAt: new Date().toISOString() } });
    return seq;
  };
}

/**
 * The room is a Parley channel's id; each message is committed with its seq
 * before it is broadcast. Concurrent commits finish in any order, so a commit
 * ahead of its predecessors waits for them: subscribers get the seqs in order,
 * as Parley's do (all sends go through this process).
 */
function commitFirst(options: DurableOptions, broadcast: Broadcast): { send: Send; close: () => Promise<void> } {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
  pool.on('error', () => {});
  const write = floorStatement(pool, options);
  interface Room {
    next: number;
    committed: Map<number, { event: PeerEvent; broadcast: () => void }>;
  }
  const rooms = new Map<string, Promise<Room>>();
  const roomOf = (room: string) => {
    let state = rooms.get(room);
    if (!state) {
      state = pool
        .query<{ lastSeq: number }>(`SELECT "lastSeq" FROM "Channel" WHERE id = $1::uuid`, [room])
        .then(({ rows }) => ({ next: (rows[0]?.lastSeq ?? 0) + 1, committed: new Map() }));
      rooms.set(room, state);
    }
    return state;
  };
  return {
    send: async (room, body) => {
      const state = await roomOf(room);
      const { id, seq, createdAt } = await write({ channelId: room, body });
      const event = { seq, message: { id, body, createdAt } };
      // Every commit that is next in line goes out now, in seq order.
      await new Promise<void>((sent) => {
        state.committed.set(seq, {
          event,
          broadcast: () =>
            void Promise.resolve(broadcast(room, event)).then(
              () => sent(),
              () => sent(),
            ),
        });
        for (let next = state.committed.get(state.next); next; next = state.committed.get(state.next)) {
          state.committed.delete(state.next++);
          next.broadcast();
        }
      });
      return seq;
    },
    close: () => pool.end(),
  };
}

/** POST /send handler shared by the peers. */
function sendHandler(send: Send) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || req.url !== '/send') {
      res.writeHead(404).end();
      return;
    }
    readJson(req)
      .then(async ({ room, body }) => {
        const seq = await send(room, body);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ seq }));
      })
      .catch((error: unknown) => res.writeHead(500).end(String(error)));
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function redisPair(url: string): [Redis, Redis] {
  const pub = new Redis(url, { maxRetriesPerRequest: null });
  const sub = new Redis(url, { maxRetriesPerRequest: null });
  for (const client of [pub, sub]) client.on('error', (error: Error) => console.error('peer redis:', error.message));
  return [pub, sub];
}

/**
 * Socket.IO 4 with @socket.io/redis-adapter: subscribers join the room named in
 * their handshake query; a send is `io.to(room).emit('message', event)`, which
 * the adapter delivers to this process's sockets and publishes for the others.
 * WebSocket transport only (no long-polling), as the other two.
 */
export async function startSocketIo(options: PeerOptions): Promise<RunningPeer> {
  const [pub, sub] = redisPair(options.redisUrl);
  const server = createServer();
  const io = new SocketIoServer(server, {
    transports: ['websocket'],
    serveClient: false,
    adapter: createAdapter(pub, sub, { key: `${options.prefix}socket.io` }),
  });
  // Socket.IO forwards requests outside /socket.io/ to the server's other listeners.
  server.on('request', sendHandler(numberInMemory((room, event) => io.to(room).emit('message', event))));
  io.on('connection', (socket) => {
    const room = socket.handshake.query.room;
    if (typeof room === 'string') void socket.join(room);
  });
  const port = await listen(server);
  return {
    port,
    async stop() {
      await new Promise<void>((resolve) => io.close(() => resolve()));
      pub.disconnect();
      sub.disconnect();
    },
  };
}

/**
 * The floor: `ws` and ioredis with nothing in between. A send is one PUBLISH of
 * the serialized event; every process subscribes to the rooms' channels and
 * writes the Redis message's bytes, as they are, to each socket of the room.
 * With `durable`, the send commits the message first (the durable floor).
 */
export async function startBare(options: PeerOptions): Promise<RunningPeer> {
  const [pub, sub] = redisPair(options.redisUrl);
  const roomChannel = (room: string) => `${options.prefix}room:${room}`;
  const rooms = new Map<string, Set<WebSocket>>();
  await sub.psubscribe(roomChannel('*'));
  sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
    const room = channel.toString('utf8').slice(roomChannel('').length);
    for (const socket of rooms.get(room) ?? []) socket.send(message, { binary: false });
  });

  const broadcast: Broadcast = (room, event) => pub.publish(roomChannel(room), JSON.stringify(event));
  const durable = options.durable ? commitFirst(options.durable, broadcast) : null;
  const server = createServer(sendHandler(durable?.send ?? numberInMemory(broadcast)));
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (socket, req) => {
    const room = new URL(req.url ?? '/', 'http://localhost').searchParams.get('room') ?? '';
    const members = rooms.get(room) ?? new Set<WebSocket>();
    rooms.set(room, members);
    members.add(socket);
    socket.on('close', () => members.delete(socket));
    socket.on('error', () => {});
  });
  const port = await listen(server);
  return {
    port,
    async stop() {
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      pub.disconnect();
      sub.disconnect();
      await durable?.close();
    },
  };
}
