import type { Client } from 'graphql-ws';
import { expect } from 'vitest';

export interface Collected<T> {
  items: T[];
  errors: { message: string; extensions?: Record<string, any> }[];
  /** Resolves when the server completes the stream (or it errors). */
  done: Promise<void>;
  /** Resolves once `count` items arrived; rejects after `ms`. */
  waitFor(count: number, ms?: number): Promise<T[]>;
  unsubscribe(): void;
}

/** Subscribes and collects every `next` payload's data (errors separately). */
export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown>, pick: (data: any) => T): Collected<T> {
  const items: T[] = [];
  const errors: Collected<T>['errors'] = [];
  const waiters: (() => void)[] = [];
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const notify = () => waiters.splice(0).forEach((w) => w());
  const unsubscribe = client.subscribe(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) errors.push(...(result.errors as Collected<T>['errors']));
        if (result.data) items.push(pick(result.data));
        notify();
      },
      error: (error) => {
        if (Array.isArray(error)) errors.push(...error);
        else errors.push({ message: String((error as Error)?.message ?? error) });
        finish();
        notify();
      },
      complete: () => {
        finish();
        notify();
      },
    },
  );
  const waitFor = async (count: number, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (items.length < count) {
      if (Date.now() > deadline) throw new Error(`timed out with ${items.length}/${count} items; errors: ${JSON.stringify(errors)}`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise((r) => setTimeout(r, 50))]);
    }
    return items;
  };
  return { items, errors, done, waitFor, unsubscribe };
}

/**
 * The oracle for live streams: a subscriber's seqs must be exactly
 * from..to, in order — no gap, no duplicate, no reordering.
 */
export function expectExactly(seqs: number[], from: number, to: number): void {
  expect(seqs).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
}

/**
 * A stream subscribed "from now" is live once it delivers something: send
 * probes until the first arrives (probes sent before the subscription was
 * active are simply not part of its history). Returns the items seen so far.
 */
export async function untilLive<T>(stream: Collected<T>, sendProbe: () => Promise<unknown>, ms = 10_000): Promise<T[]> {
  const deadline = Date.now() + ms;
  while (stream.items.length === 0) {
    if (Date.now() > deadline) throw new Error(`stream never went live; errors: ${JSON.stringify(stream.errors)}`);
    await sendProbe();
    await Promise.race([stream.waitFor(1, 200).catch(() => undefined)]);
  }
  return stream.items;
}
