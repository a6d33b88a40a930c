import type { ExecutionResult } from 'graphql';
import { isPromise } from 'graphql-yoga';
import { LiveStream } from '../bus/live-stream.ts';
import type { FrameLink, FrameWriter } from './frames.ts';

/** How a graphql-ws operation's results can reach its socket without going through graphql-ws' loop. */
export interface LiveOperation {
  link: FrameLink;
  /** The graphql-ws operation id, which every `next` message names. */
  id: string;
  /** Logs and masks a result's errors as Yoga does for the results it sends itself (ErrorMasking.result). */
  mask: (result: ExecutionResult) => ExecutionResult;
}

/**
 * The live fast path of one app: which graphql-ws operation each execution
 * context belongs to (the schema's context knows nothing of sockets), and the
 * delivery of a stream's items to that operation's socket through the app's
 * FrameWriter.
 */
export class SocketDelivery {
  private readonly operations = new WeakMap<object, LiveOperation>();

  constructor(readonly frames: FrameWriter) {}

  /** Marks `context` as a graphql-ws operation's, whose live results may go straight to its socket. */
  attach(context: object, operation: LiveOperation): void {
    this.operations.set(context, operation);
  }

  operationOf(context: unknown): LiveOperation | undefined {
    return typeof context === 'object' && context !== null ? this.operations.get(context) : undefined;
  }

  /**
   * Writes every item of `source`, executed by `execute`, to the socket as
   * the graphql-ws `next` message graphql-ws itself would send, in order.
   * Items whose result is ready are written in the call that delivered them:
   * with the result shared (shared-execution.ts) and its JSON serialized once
   * by the FrameWriter, one more subscriber costs one frame built from two
   * buffers and a socket write, as in a bare broadcaster.
   *
   * graphql-ws still owns the operation: it holds the returned stream, which
   * yields nothing and ends (or fails) when the source does, after everything
   * before was written; graphql-ws then sends `complete` (or `error`) as
   * usual, and closes the stream when the client completes the operation or
   * the socket closes.
   */
  deliver<T>(
    source: LiveStream<T>,
    execute: (item: T) => ExecutionResult | Promise<ExecutionResult>,
    operation: LiveOperation,
  ): LiveStream<never> {
    const { frames } = this;
    const { link } = operation;
    const completion = new LiveStream<never>();
    completion.onClose(() => source.close());
    const prefix = Buffer.from(`{"id":${JSON.stringify(operation.id)},"type":"next","payload":`);

    const write = (result: ExecutionResult) => {
      if (completion.done || link.socket.readyState !== link.socket.OPEN) return;
      frames.next(
        link,
        prefix,
        frames.payload(result, () => JSON.stringify(operation.mask(result))),
      );
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
        tail.then(
          () => completion.end(error),
          () => {},
        );
      },
      ready: () => frames.drained(link),
    });
    return completion;
  }
}
