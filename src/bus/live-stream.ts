/** What a stream's items go to when it is consumed by push instead of by pull. */
export interface LiveSink<T> {
  /** Each item, in order, synchronously as it is pushed. */
  item(item: T): void;
  /** The stream ended after the items handed over; with `error` when it failed. */
  end(error?: unknown): void;
  /** Undefined while the consumer takes more at once; otherwise resolves when it does again. */
  ready(): Promise<void> | undefined;
}

/** Items a pulled stream queues before `ready()` asks its producer to wait, and where it lets it go on. */
const PULL_HIGH_WATER = 1000;
const PULL_LOW_WATER = 100;

/**
 * The items of one live subscription, in order. GraphQL execution pulls them
 * as an async iterator; the WebSocket fan-out (see socket-delivery.ts)
 * attaches a sink instead and is handed each item synchronously, so a
 * delivery to one of a thousand subscribers costs no promise and no
 * microtask. Either way, ending (by the producer, with or without an error)
 * and closing (by the consumer) run the producer's clean-up once, and a
 * producer that can choose its pace (a replay from the log) asks `ready()`
 * before each item, so a slow consumer slows it down instead of piling up.
 */
export class LiveStream<T> implements AsyncIterableIterator<T> {
  private queue: T[] = [];
  private waiting: { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void } | null = null;
  private sink: LiveSink<T> | null = null;
  /** Set once the producer ended: null error for a clean end. */
  private ending: { error: unknown } | null = null;
  private closed = false;
  private readonly cleanups: (() => void)[] = [];
  private roomWaiters: (() => void)[] = [];

  /** Runs `cleanup` once the stream ends or is closed (at once if it already has). */
  onClose(cleanup: () => void): void {
    if (this.closed || this.ending) cleanup();
    else this.cleanups.push(cleanup);
  }

  get done(): boolean {
    return this.closed || this.ending !== null;
  }

  /** Undefined when the consumer can take more now; otherwise resolves when it can (or the stream is done). */
  ready(): Promise<void> | undefined {
    if (this.done) return undefined;
    if (this.sink) return this.sink.ready();
    if (this.queue.length < PULL_HIGH_WATER) return undefined;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  push(item: T): void {
    if (this.done) return;
    if (this.sink) return this.sink.item(item);
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = null;
      waiting.resolve({ value: item, done: false });
    } else {
      this.queue.push(item);
    }
  }

  /** Ends the stream after the items pushed so far; a consumer gets `error` (if any) after them. */
  end(error?: unknown): void {
    if (this.done) return;
    this.ending = { error };
    this.runCleanups();
    if (this.sink) return this.sink.end(error);
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = null;
      if (error === undefined) waiting.resolve({ value: undefined, done: true });
      else waiting.reject(error);
    }
  }

  /** Switches to push: queued items go to `sink` now, later ones as they come. */
  attach(sink: LiveSink<T>): void {
    const queued = this.queue;
    this.queue = [];
    for (const item of queued) sink.item(item);
    if (this.closed) return;
    this.sink = sink;
    if (this.ending) sink.end(this.ending.error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length) {
      const value = this.queue.shift()!;
      if (this.queue.length <= PULL_LOW_WATER) this.wakeProducer();
      return Promise.resolve({ value, done: false });
    }
    if (this.ending && this.ending.error !== undefined) {
      const { error } = this.ending;
      this.ending = { error: undefined };
      return Promise.reject(error);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  /** The consumer is done: drops what is queued and stops the producer. */
  return(): Promise<IteratorResult<T>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.close();
    return Promise.reject(error);
  }

  close(): void {
    if (this.closed) return;
    const running = !this.ending;
    this.closed = true;
    this.queue = [];
    this.sink = null;
    if (running) this.runCleanups();
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.resolve({ value: undefined, done: true });
    this.wakeProducer();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private wakeProducer(): void {
    for (const resolve of this.roomWaiters.splice(0)) resolve();
  }

  private runCleanups(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}
