import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';
import { SocketClose } from './sockets.ts';

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}

/**
 * ws' own frame builder (`lib/sender.js`, exported as `Sender` but left out
 * of @types/ws): for an unmasked frame it returns `[header, data]`, the
 * header sized for the data's length.
 */
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };

/** A whole text frame, unmasked as a server's are. */
const TEXT: FrameOptions = { fin: true, opcode: 0x01, mask: false, readOnly: false, rsv1: false };
/** The longest header a frame has (2 bytes, 8 of extended length). */
const MAX_HEADER = 10;
const CLOSING_BRACE = 0x7d;
const BRACE = Buffer.from('}');

/**
 * The text frame of a body that `fill` writes into a buffer with room for
 * the header in front: the header comes from ws (`Sender.frame`), and is
 * copied in before the body, so the frame is one buffer and one write.
 */
function textFrame(length: number, fill: (target: Buffer) => void): Buffer {
  const frame = Buffer.allocUnsafe(MAX_HEADER + length);
  const body = frame.subarray(MAX_HEADER);
  fill(body);
  const header = Sender.frame(body, TEXT)[0]!;
  const start = MAX_HEADER - header.length;
  header.copy(frame, start);
  return frame.subarray(start);
}

/** `{prefix}{payload}}`: a graphql-ws `next` message built from its two serialized parts. */
function nextFrame(prefix: Buffer, payload: Buffer): Buffer {
  return textFrame(prefix.length + payload.length + 1, (body) => {
    prefix.copy(body, 0);
    payload.copy(body, prefix.length);
    body[body.length - 1] = CLOSING_BRACE;
  });
}

function messageFrame(data: string): Buffer {
  return textFrame(Buffer.byteLength(data), (body) => void body.write(data, 0));
}

/** One socket, as the writer knows it. Made by `FrameWriter.open` when the server accepts the socket. */
export interface FrameLink {
  readonly socket: WebSocket;
  /** The TCP connection under the socket (its upgrade request's), whose writes are batched per event-loop turn. */
  readonly connection: Socket;
  /**
   * Whether frames may be written to the connection directly. ws writes the
   * frames it sends itself (pings, pongs, close) at once, in order with
   * these, unless permessage-deflate holds them back to compress them (or a
   * Blob is read, which nothing here sends). The server turns the extension
   * off, and this checks that none was negotiated, through ws' public
   * `extensions`: with one, frames go through ws' `send` instead.
   */
  readonly direct: boolean;
}

export interface FrameWriterOptions {
  /**
   * A socket whose unsent data grows past this is closed (1013, try again
   * later) instead of buffering without bound: its client resubscribes with
   * the last seq it received and catches up from the log.
   */
  maxBufferedBytes: number;
  /** Counts each `next` frame of the fast path (metrics); a plain number, as this runs per event per socket. */
  counters?: { liveDeliveries: number } | null;
  /**
   * Past this many connections waiting for the end of the turn, writing them
   * takes longer (15-30 µs a socket) than the rest of the mutation that
   * committed the event, so a lone event's writes wait for the turn to end:
   * its sender's answer goes first.
   */
  flushAtOnceMax?: number;
}

/**
 * The one way a frame reaches a Parley socket: graphql-ws' messages
 * (`send`) and the live fast path's `next` frames (`next`) alike, built with
 * ws' frame builder. One per app: what is held for the current turn of the
 * event loop, and each result's serialized payload, belong to it.
 *
 * Fan-out is bound by system calls, one write per frame. Connections written
 * to by the fast path stay corked until the turn has run, so when several
 * events reach this process in one turn (a busy channel: Redis hands over
 * what arrived in one read; commits that finished together), each socket
 * gets all of them in one write. A lone event need not wait for the turn to
 * end: `delivered` (the channel hub's hook) sends it as soon as the code that
 * delivered it has run, unless the last turn was busy or the channel large.
 */
export class FrameWriter {
  /** Connections corked in this turn, uncorked when it ends (or earlier, see `delivered`). */
  private readonly held = new Set<Socket>();
  /** Each result's `next` payload, serialized once (as UTF-8) for every socket it goes to. */
  private readonly payloads = new WeakMap<object, Buffer>();
  private readonly maxBufferedBytes: number;
  private readonly counters: { liveDeliveries: number } | null;
  private readonly flushAtOnceMax: number;
  private turnEnding = false;
  private earlyFlush = false;
  /** Separate deliveries (hub batches) that wrote in this turn. */
  private batches = 0;
  /** The last turn that wrote had more than one: a burst of events, whose writes are worth batching. */
  private busy = false;

  constructor(options: FrameWriterOptions) {
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.counters = options.counters ?? null;
    this.flushAtOnceMax = options.flushAtOnceMax ?? 128;
  }

  /** The link of a socket the server accepted, with the TCP connection under it. */
  open(socket: WebSocket, connection: Socket): FrameLink {
    return { socket, connection, direct: socket.extensions === '' };
  }

  /**
   * Sends one graphql-ws message at once (joining the connection's batch if
   * the fast path holds it this turn, so the order of messages is kept).
   * Resolves once it is written; at once when the socket is no longer open.
   */
  send(link: FrameLink, data: string): Promise<void> {
    const { socket } = link;
    if (socket.readyState !== socket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (link.direct) link.connection.write(messageFrame(data), done);
      else socket.send(data, done);
    });
  }

  /** The UTF-8 JSON of a result, made by `serialize` once however many sockets it goes to. */
  payload(result: object, serialize: () => string): Buffer {
    let payload = this.payloads.get(result);
    if (payload === undefined) this.payloads.set(result, (payload = Buffer.from(serialize())));
    return payload;
  }

  /**
   * Writes the `next` message `{prefix}{payload}}` (prefix: the message up to
   * its payload, per operation) to the socket, held until the turn ends. A
   * socket whose unsent data passes the cap is closed with 1013.
   */
  next(link: FrameLink, prefix: Buffer, payload: Buffer): void {
    const { socket, connection } = link;
    if (socket.readyState !== socket.OPEN) return;
    this.hold(connection);
    if (link.direct) connection.write(nextFrame(prefix, payload));
    else socket.send(Buffer.concat([prefix, payload, BRACE]), { binary: false });
    if (this.counters) this.counters.liveDeliveries++;
    if (socket.bufferedAmount > this.maxBufferedBytes) {
      socket.close(SocketClose.TryAgainLater, 'Receiving too slowly; resubscribe from the last seq received');
    }
  }

  /**
   * Undefined while the socket may take more now; otherwise resolves once
   * its unsent data is down to a quarter of the cap's worth (its connection
   * drained) or it closed. A replay waits on this, so catching up on a long
   * history never trips the cap that is there for live events.
   */
  drained(link: FrameLink): Promise<void> | undefined {
    const { socket, connection } = link;
    if (socket.readyState !== socket.OPEN || socket.bufferedAmount < this.maxBufferedBytes / 4 || !connection.writableNeedDrain)
      return undefined;
    return new Promise<void>((resolve) => {
      const done = () => {
        connection.off('drain', done);
        connection.off('close', done);
        resolve();
      };
      connection.on('drain', done);
      connection.on('close', done);
    });
  }

  /**
   * Called after a batch of events was handed to their streams (the channel
   * hub's hook), which have written their frames by now. The first batch of
   * a quiet turn is sent as soon as the code that delivered it has run (a
   * microtask: the commit's other events join it, its mutation's answer comes
   * after), so its subscribers do not wait for the rest of the turn. When the
   * turn (or the last one) carried several batches, or more connections than
   * `flushAtOnceMax` wait, the writes wait for the end of the turn, where
   * each socket gets them all in one write.
   */
  delivered(): void {
    if (this.held.size === 0 || this.earlyFlush) return;
    this.batches++;
    if (this.batches > 1 || this.busy) return;
    this.earlyFlush = true;
    queueMicrotask(() => {
      this.earlyFlush = false;
      if (this.held.size <= this.flushAtOnceMax) this.uncorkHeld();
    });
  }

  private hold(connection: Socket): void {
    if (this.held.has(connection)) return;
    connection.cork();
    this.held.add(connection);
    if (this.turnEnding) return;
    this.turnEnding = true;
    setImmediate(() => this.endTurn());
  }

  private endTurn(): void {
    this.turnEnding = false;
    this.busy = this.batches > 1;
    this.batches = 0;
    this.uncorkHeld();
  }

  private uncorkHeld(): void {
    for (const connection of this.held) connection.uncork();
    this.held.clear();
  }
}
