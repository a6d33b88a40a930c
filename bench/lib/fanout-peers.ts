// The two peers B3/B4 measure Parley's fan-out against. Both do only what a
// broadcast needs: no authentication, no membership check, nothing persisted.
// The first process of a pair takes the sends (POST /send), numbers them per
// room (one counter, so every subscriber can be checked for gaps like Parley's
// seq) and broadcasts through Redis to every process, itself included.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocketServer, type WebSocket } from 'ws';

export interface PeerOptions {
  redisUrl: string;
  /** Unique per run: Redis channel names and the adapter's key start with it. */
  prefix: string;
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

/** POST /send handler shared by both peers: `broadcast` gets the numbered event. */
function sendHandler(broadcast: (room: string, event: PeerEvent) => Promise<unknown> | unknown) {
  const seqs = new Map<string, number>();
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || req.url !== '/send') {
      res.writeHead(404).end();
      return;
    }
    readJson(req)
      .then(async ({ room, body }) => {
        const seq = (seqs.get(room) ?? 0) + 1;
        seqs.set(room, seq);
        await broadcast(room, { seq, message: { id: randomUUID(), body, createdAt: new Date().toISOString() } });
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
  server.on('request', sendHandler((room, event) => io.to(room).emit('message', event)));
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

  const server = createServer(sendHandler((room, event) => pub.publish(roomChannel(room), JSON.stringify(event))));
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
    },
  };
}
