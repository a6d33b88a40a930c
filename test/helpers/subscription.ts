import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import type { Client } from 'graphql-ws';
import { expect } from 'vitest';
import { queryText } from './operation.ts';

export interface Collected<T> {
  items: T[];
  errors: { message: string; extensions?: Record<string, unknown> }[];
  /** Resolves when the server completes the stream (or it errors). */
  done: Promise<void>;
  /** Resolves once `count` items arrived; rejects after `ms`. */
  waitFor(count: number, ms?: number): Promise<T[]>;
  unsubscribe(): void;
}

/**
 * Subscribes and collects every `next` payload's data, as `pick` maps it
 * (errors separately). A typed document types the data `pick` gets; a plain
 * string (a document that is invalid on purpose) leaves it untyped.
 */
export function collect<R, V, T>(client: Client, query: TypedDocumentNode<R, V>, variables: V, pick: (data: R) => T): Collected<T>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped, as GqlSender's string overload
export function collect<T>(client: Client, query: string, variables: Record<string, unknown>, pick: (data: any) => T): Collected<T>;
export function collect<T>(
  client: Client,
  query: TypedDocumentNode<unknown, unknown> | string,
  variables: unknown,
  pick: (data: never) => T,
): Collected<T> {
  const items: T[] = [];
  const errors: Collected<T>['errors'] = [];
  const waiters: (() => void)[] = [];
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const notify = () => waiters.splice(0).forEach((w) => w());
  const unsubscribe = client.subscribe(
    { query: queryText(query), variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        if (result.errors) errors.push(...(result.errors as Collected<T>['errors']));
        if (result.data) items.push(pick(result.data as never));
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

/**
 * The message of a live event whose type carries one (the `... on
 * MessageAddedEvent { message { ... } }` of a selection), undefined for the
 * other event types.
 */
export function messageOf<E extends object>(event: E): (E extends { message: infer M } ? M : never) | undefined {
  return 'message' in event ? (event.message as E extends { message: infer M } ? M : never) : undefined;
}

/**
 * A union of event types read as one object, the way a test reads a stream of
 * mixed events: the fields every member has, and, optional (undefined on the
 * members without it), the fields only some have.
 */
export type AnyOf<U> = { [K in keyof U]: U[K] } & {
  [K in Exclude<U extends unknown ? keyof U : never, keyof U>]?: U extends { [P in K]: infer V } ? V : never;
};
