// Child process: many subscribers of one channel (or room), each on its own
// socket with the client library its server is used with. It counts
// deliveries, measures send-to-receive latency from the time the sender stamped
// into each body, and checks that every subscriber sees consecutive seqs.
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { serve, wallNow } from './fanout-ipc.ts';
import { subscriptionClient } from './graphql.ts';
import type { PeerEvent } from './fanout-peers.ts';
import type { Peer } from './fanout-report.ts';
import { Histogram } from './stats.ts';

/** What a chat client selects to show a new message. */
export const CHANNEL_EVENTS = `subscription Fanout($channelId: ID!, $after: Int) {
  channelEvents(channelId: $channelId, after: $after) { seq ... on MessageAddedEvent { message { id body createdAt } } }
}`;

/**
 * The diagnostic selection: only fields resolved from the published payload
 * (the send time travels in clientMessageId), so no field can query the
 * database per subscriber.
 */
export const CHANNEL_EVENTS_LEAN = `subscription FanoutLean($channelId: ID!, $after: Int) {
  channelEvents(channelId: $channelId, after: $after) { seq ... on MessageAddedEvent { message { id clientMessageId createdAt } } }
}`;

export interface ConnectSpec {
  /** Subscribers are kept in named groups (one per peer and server count), so several can stay connected. */
  group: string;
  kind: Peer;
  /** http://127.0.0.1:port of the server these subscribers use. */
  url: string;
  /** Parley: the channel's global ID; peers: the room name. */
  channel: string;
  /** Parley: tokens handed out round-robin (a user may hold several sockets, up to the server's cap). */
  tokens: string[];
  count: number;
  /** Parley: subscribe with this `after`, so every later seq must arrive (and nothing earlier). */
  after: number | null;
  /** Sockets being opened at once. */
  parallel: number;
}

export interface StepResult {
  deliveries: number;
  histogram: ReturnType<Histogram['snapshot']>;
  /** Per message of the step (seq), the latency of its first delivery in this process. */
  firstBySeq: Map<number, number>;
}

export interface ExpectResult {
  reached: boolean;
  /** Subscribers still short of the seq when the wait ended. */
  behind: number;
  /** wallNow() when the last subscriber reached it. */
  at: number;
}

interface Subscriber {
  group: Group;
  index: number;
  /** Last seq received; the next must be last + 1. Null for a peer subscriber that has received nothing yet. */
  last: number | null;
  /** Set before the benchmark closes it: what its client reports from then on is expected. */
  closing: boolean;
  close(): Promise<void>;
}

interface Group {
  subscribers: Subscriber[];
  violations: { count: number; first: string[] };
  /** wallNow() of the latest delivery to any of its subscribers. */
  lastReceiptAt: number;
  target: { seq: number; remaining: number; done: (result: ExpectResult) => void } | null;
}

const MAX_REPORTED = 20;
const groups = new Map<string, Group>();
// Only one group receives at a time, so the step's counters are shared.
const histogram = new Histogram();
let deliveries = 0;
let firstBySeq = new Map<number, number>();

function groupOf(name: string): Group {
  let group = groups.get(name);
  if (!group) {
    group = { subscribers: [], violations: { count: 0, first: [] }, lastReceiptAt: 0, target: null };
    groups.set(name, group);
  }
  return group;
}

function violation(group: Group, text: string): void {
  group.violations.count++;
  if (group.violations.first.length < MAX_REPORTED) group.violations.first.push(text);
}

/** The sender's stamp: the body is JSON with `t`; clientMessageId starts with `t:`. */
const stampOfBody = (body: string) => (JSON.parse(body) as { t: number }).t;
const stampOfClientId = (id: string) => Number(id.slice(0, id.indexOf(':')));

function receive(sub: Subscriber, seq: number, sentAt: number): void {
  const now = wallNow();
  const before = sub.last;
  const group = sub.group;
  if (before !== null && seq !== before + 1) {
    violation(group, `subscriber ${sub.index}: after seq ${before} received ${seq} (${seq <= before ? 'duplicate or reordered' : 'gap'})`);
    if (seq <= before) return;
  }
  sub.last = seq;
  deliveries++;
  group.lastReceiptAt = now;
  histogram.add(now - sentAt);
  if (!firstBySeq.has(seq)) firstBySeq.set(seq, now - sentAt);
  const target = group.target;
  if (target && seq >= target.seq && (before === null || before < target.seq) && --target.remaining === 0) {
    group.target = null;
    target.done({ reached: true, behind: 0, at: now });
  }
}

function lost(sub: Subscriber, what: string): void {
  if (!sub.closing) violation(sub.group, `subscriber ${sub.index}: ${what}`);
}

function connectParley(spec: ConnectSpec, index: number): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const sub: Subscriber = { group: groupOf(spec.group), index, last: spec.after, closing: false, close: async () => {} };
    let connected = false;
    let onClosed = () => {};
    const closed = new Promise<void>((done) => (onClosed = done));
    const client = subscriptionClient(spec.url, spec.tokens[index % spec.tokens.length], {
      connected: () => {
        connected = true;
        resolve(sub);
      },
      closed: (code) => {
        onClosed();
        if (!connected) reject(new Error(`subscriber ${index}: socket closed before connection_ack (code ${code})`));
        else lost(sub, `socket closed (code ${code})`);
      },
    });
    // dispose() starts the close handshake; the socket is gone once 'closed' fires.
    sub.close = async () => {
      await client.dispose();
      await closed;
    };
    const lean = spec.kind === 'parley-lean';
    client.subscribe<{ channelEvents: { seq: number; message?: { body?: string; clientMessageId?: string } } }>(
      { query: lean ? CHANNEL_EVENTS_LEAN : CHANNEL_EVENTS, variables: { channelId: spec.channel, after: spec.after } },
      {
        next: (result) => {
          const event = result.data?.channelEvents;
          const stamp = lean ? event?.message?.clientMessageId : event?.message?.body;
          if (result.errors || typeof stamp !== 'string') return lost(sub, `unexpected result ${JSON.stringify(result).slice(0, 200)}`);
          receive(sub, event!.seq, lean ? stampOfClientId(stamp) : stampOfBody(stamp));
        },
        error: (error) => lost(sub, `subscription failed: ${JSON.stringify(error).slice(0, 200)}`),
        complete: () => lost(sub, 'subscription completed'),
      },
    );
  });
}

function connectSocketIo(spec: ConnectSpec, index: number): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const socket: Socket = ioClient(spec.url, {
      transports: ['websocket'],
      // One connection per subscriber: by default the client would multiplex
      // every socket to the same URL onto one connection.
      forceNew: true,
      reconnection: false,
      query: { room: spec.channel },
    });
    const sub: Subscriber = {
      group: groupOf(spec.group),
      index,
      last: null,
      closing: false,
      close: () =>
        new Promise<void>((done) => {
          socket.once('disconnect', () => done());
          socket.disconnect();
        }),
    };
    socket.on('message', (event: PeerEvent) => receive(sub, event.seq, stampOfBody(event.message.body)));
    socket.once('connect', () => {
      socket.on('disconnect', (reason) => lost(sub, `disconnected (${reason})`));
      resolve(sub);
    });
    socket.once('connect_error', (error) => reject(new Error(`subscriber ${index}: ${error.message}`)));
  });
}

function connectBare(spec: ConnectSpec, index: number): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const url = `${spec.url.replace(/^http/, 'ws')}/ws?room=${encodeURIComponent(spec.channel)}`;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const sub: Subscriber = {
      group: groupOf(spec.group),
      index,
      last: null,
      closing: false,
      close: () =>
        new Promise<void>((done) => {
          if (ws.readyState === WebSocket.CLOSED) return done();
          ws.once('close', () => done());
          ws.close();
        }),
    };
    ws.on('message', (data) => {
      const event = JSON.parse(String(data)) as PeerEvent;
      receive(sub, event.seq, stampOfBody(event.message.body));
    });
    ws.once('open', () => {
      ws.on('close', (code) => lost(sub, `socket closed (code ${code})`));
      resolve(sub);
    });
    ws.once('error', (error) => reject(new Error(`subscriber ${index}: ${error.message}`)));
  });
}

async function closeAll(all: Subscriber[], waitMs: number): Promise<void> {
  for (const sub of all) sub.closing = true;
  await Promise.all(all.map((s) => Promise.race([s.close(), new Promise((r) => setTimeout(r, waitMs))])));
}

const connectors: Record<Peer, (spec: ConnectSpec, index: number) => Promise<Subscriber>> = {
  parley: connectParley,
  'parley-lean': connectParley,
  socketio: connectSocketIo,
  bare: connectBare,
  durable: connectBare,
};

serve(
  {
    /** Opens `count` more subscribers in the group, `parallel` at a time. */
    async connect(spec: ConnectSpec): Promise<number> {
      const group = groupOf(spec.group);
      let next = 0;
      const first = group.subscribers.length;
      const opened: Subscriber[] = [];
      await Promise.all(
        Array.from({ length: Math.min(spec.parallel, spec.count) }, async () => {
          while (next < spec.count) {
            const index = first + next++;
            opened.push(await connectors[spec.kind](spec, index));
          }
        }),
      );
      group.subscribers.push(...opened);
      return group.subscribers.length;
    },

    /** Resolves once every subscriber of the group has received `seq` (or after `timeoutMs`). */
    expect({ group: name, seq, timeoutMs }: { group: string; seq: number; timeoutMs: number }): Promise<ExpectResult> {
      const group = groupOf(name);
      const short = () => group.subscribers.filter((s) => s.last === null || s.last < seq).length;
      const remaining = short();
      // Nothing later was sent, so the latest delivery is when the last subscriber got it.
      if (remaining === 0) return Promise.resolve({ reached: true, behind: 0, at: group.lastReceiptAt });
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          group.target = null;
          resolve({ reached: false, behind: short(), at: wallNow() });
        }, timeoutMs);
        group.target = {
          seq,
          remaining,
          done: (result) => {
            clearTimeout(timer);
            resolve(result);
          },
        };
      });
    },

    /** Starts counting a step: deliveries and latencies from now on. */
    begin(): void {
      deliveries = 0;
      histogram.reset();
      firstBySeq = new Map();
    },

    end(): StepResult {
      return { deliveries, histogram: histogram.snapshot(), firstBySeq };
    },

    violations: (name: string) => groupOf(name).violations,

    /** Last seq of every subscriber of the group (for the final completeness check). */
    lastSeqs: (name: string) => groupOf(name).subscribers.map((s) => s.last),

    closeGroup: (name: string) => closeAll(groupOf(name).subscribers.splice(0), 5000),
  },
  () =>
    closeAll(
      [...groups.values()].flatMap((g) => g.subscribers.splice(0)),
      1000,
    ),
);
