import type { ExecutionResult } from 'graphql';
import { isPromise } from 'graphql-yoga';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { LiveStream } from '../bus/live-stream.ts';
import { SocketClose } from './sockets.ts';

/** How a graphql-ws operation's results can reach its socket without going through graphql-ws' loop. */
export interface LiveTransport {
  socket: WebSocket;
  /** The TCP connection under `socket` (the upgrade request's), whose writes are batched per event-loop turn. */
  connection: Socket;
  /** The graphql-ws operation id, which every `next` message names. */
  id: string;
  /** Logs and masks a result's errors as Yoga does for results it sends itself. */
  mask: (result: ExecutionResult) => ExecutionResult;
  /**
   * A socket whose unsent data grows past this is closed (1013, try again
   * later) instead of buffering without bound: its client resubscribes with
   * the last seq it received and catches up from the log.
   */
  maxBufferedBytes: number;
  /** Counts each event written (metrics); a plain number, as this runs per event per socket. */
  counters?: { liveDeliveries: number };
}

/** The live transport of each graphql-ws operation, by its context (the schema's context knows nothing of sockets). */
const transports = new WeakMap<object, LiveTransport>();

export function attachLiveTransport(context: object, live: LiveTransport): void {
  transports.set(context, live);
}

export function liveTransportOf(context: unknown): LiveTransport | undefined {
  return typeof context === 'object' && context !== null ? transports.get(context) : undefined;
}

/** Each result's `next` payload, serialized once (as UTF-8) for every socket it goes to. */
const payloads = new WeakMap<ExecutionResult, Buffer>();

const CLOSING_BRACE = 0x7d;

/**
 * The WebSocket text frame of `{prefix}{payload}}`, as ws would frame it for
 * a server (unmasked), built in one buffer: one write per socket instead of
 * ws' two, with the payload's bytes copied rather than encoded again.
 */
function textFrame(prefix: Buffer, payload: Buffer): Buffer {
  const length = prefix.length + payload.length + 1;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81; // FIN, text
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  prefix.copy(frame, header);
  payload.copy(frame, header + prefix.length);
  frame[header + length - 1] = CLOSING_BRACE;
  return frame;
}

/**
 * Whether a frame may go to the connection directly: ws writes each frame it
 * sends itself (graphql-ws' own messages, pings, close) synchronously as long
 * as its sender is idle, which it always is without permessage-deflate (off
 * on Parley's server) and Blob data (never sent here). Should that ever
 * differ, frames go through ws.
 */
function senderIdle(socket: WebSocket): boolean {
  return (socket as unknown as { _sender?: { _state?: number } })._sender?._state === 0;
}

/** Connections written to in this turn of the event loop, corked until it ends. */
const held = new Set<Socket>();

function flushHeld(): void {
  for (const connection of held) connection.uncork();
  held.clear();
}

/**
 * Past this many sockets, writing an event takes longer (15-30 µs a socket
 * here) than the rest of the mutation that committed it, so `flushWrites`
 * lets the mutation answer its sender first.
 */
const FLUSH_AT_ONCE_MAX = 128;

/**
 * Sends what this turn has written so far without waiting for the turn to
 * end. For an event nothing else will join: waiting would only make its
 * subscribers wait for whatever else the turn still runs (the mutation that
 * committed it answering its sender, for one). A large channel's writes keep
 * waiting: its sender would wait for all of them, and they would gain little.
 */
export function flushWrites(): void {
  if (held.size > 0 && held.size <= FLUSH_AT_ONCE_MAX) flushHeld();
}

/**
 * Holds the connection's writes until the current turn of the event loop has
 * run. Fan-out is bound by system calls, one write per frame; when several
 * events reach this process in one turn (a busy channel: Redis hands over
 * what arrived in one read), each socket then gets all of them in one write.
 * A lone event costs no wait beyond the turn it arrived in, and none at all
 * when its sender knows it is alone (`flushWrites`).
 */
function holdForTurn(connection: Socket): void {
  if (held.has(connection)) return;
  connection.cork();
  if (held.size === 0) setImmediate(flushHeld);
  held.add(connection);
}

/**
 * Writes every item of `source`, executed by `execute`, to the socket as the
 * graphql-ws `next` message graphql-ws itself would send, in order. Items
 * whose result is ready are written in the call that delivered them: with the
 * result shared (shared-execution.ts) and its JSON cached here, one more
 * subscriber costs one frame built from two buffers and a socket write, as in
 * a bare broadcaster, and writes within one turn of the event loop go out
 * together.
 *
 * graphql-ws still owns the operation: it holds the returned stream, which
 * yields nothing and ends (or fails) when the source does, after everything
 * before was written; graphql-ws then sends `complete` (or `error`) as usual,
 * and closes the stream when the client completes the operation or the socket
 * closes.
 */
export function deliverToSocket<T>(
  source: LiveStream<T>,
  execute: (item: T) => ExecutionResult | Promise<ExecutionResult>,
  transport: LiveTransport,
): LiveStream<never> {
  const completion = new LiveStream<never>();
  completion.onClose(() => source.close());
  const { socket } = transport;
  const prefix = Buffer.from(`{"id":${JSON.stringify(transport.id)},"type":"next","payload":`);

  const write = (result: ExecutionResult) => {
    if (completion.done || socket.readyState !== socket.OPEN) return;
    let payload = payloads.get(result);
    if (payload === undefined) payloads.set(result, (payload = Buffer.from(JSON.stringify(transport.mask(result)))));
    holdForTurn(transport.connection);
    if (senderIdle(socket)) transport.connection.write(textFrame(prefix, payload));
    else socket.send(Buffer.concat([prefix, payload, Buffer.from('}')]), { binary: false });
    if (transport.counters) transport.counters.liveDeliveries++;
    if (socket.bufferedAmount > transport.maxBufferedBytes) {
      socket.close(SocketClose.TryAgainLater, 'Receiving too slowly; resubscribe from the last seq received');
    }
  };

  // Items waiting for an execution that has not finished, and those behind them.
  let tail: Promise<void> | null = null;
  const enqueue = (result: () => ExecutionResult | Promise<ExecutionResult>) => {
    const next: Promise<void> = (tail ?? Promise.resolve()).then(async () => write(await result()));
    tail = next;
    next.then(
      () => {
        if (tail === next) tail = null;
      },
      (error: unknown) => {
        completion.end(error);
        source.close();
      },
    );
  };

  source.attach({
    item: (item) => {
      if (tail) return enqueue(() => execute(item));
      const result = execute(item);
      if (isPromise(result)) enqueue(() => result);
      else write(result);
    },
    end: (error) => {
      if (!tail) return completion.end(error);
      tail.then(() => completion.end(error), () => {});
    },
    // A replay waits while a quarter of the cap is still unsent, so catching
    // up on a long history never trips the cap that is there for live events.
    ready: () => {
      const { connection } = transport;
      if (socket.readyState !== socket.OPEN || socket.bufferedAmount < transport.maxBufferedBytes / 4 || !connection.writableNeedDrain) return undefined;
      return new Promise<void>((resolve) => {
        const done = () => {
          connection.off('drain', done);
          connection.off('close', done);
          resolve();
        };
        connection.on('drain', done);
        connection.on('close', done);
      });
    },
  });
  return completion;
}
