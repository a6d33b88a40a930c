import type { Client } from 'graphql-ws';
import type { GqlEndpoint } from './app.ts';
import { ok, type TestUser } from './fixtures.ts';
import { collect, type Collected } from './subscription.ts';
import { graphql } from '../generated/index.ts';
import type { TypingSubscription } from '../generated/graphql.ts';

export const TYPING = graphql(`
  subscription Typing($c: ID!) {
    typing(channelId: $c) {
      channelId
      userId
      typing
      expiresAt
      user {
        id
        displayName
      }
    }
  }
`);
export const SET_TYPING = graphql(`
  mutation SetTyping($c: ID!, $t: Boolean!) {
    setTyping(channelId: $c, typing: $t)
  }
`);

export type TypingItem = TypingSubscription['typing'];

export function typingStream(client: Client, channelId: string): Collected<TypingItem> {
  return collect(client, TYPING, { c: channelId }, (data) => data.typing);
}

/** setTyping over HTTP; true when the call was broadcast. */
export async function setTyping(s: GqlEndpoint, token: string, channelId: string, typing: boolean): Promise<boolean> {
  return ok(await s.gql(SET_TYPING, { c: channelId, t: typing }, token)).setTyping;
}

/** Waits until the stream's items satisfy `check`. */
export async function waitUntil(
  stream: Collected<TypingItem>,
  check: (items: TypingItem[]) => boolean,
  ms = 10_000,
): Promise<TypingItem[]> {
  const deadline = Date.now() + ms;
  while (!check(stream.items)) {
    const left = deadline - Date.now();
    if (left <= 0)
      throw new Error(`typing stream: condition not met; items ${JSON.stringify(stream.items)}, errors ${JSON.stringify(stream.errors)}`);
    await stream.waitFor(stream.items.length + 1, Math.min(left, 200)).catch(() => undefined);
  }
  return stream.items;
}

/**
 * Makes sure a typing stream is live: `prober` (not the stream's viewer)
 * stops and starts typing until the stream shows it (a stop first, so the
 * throttle never holds a probe back), then stops for good and waits for that
 * stop. Returns with the stream's items emptied.
 */
export async function untilTypingLive(stream: Collected<TypingItem>, s: GqlEndpoint, prober: TestUser, channelId: string): Promise<void> {
  const shown = (items: TypingItem[]) => items.some((e) => e.userId === prober.id && e.typing);
  const deadline = Date.now() + 10_000;
  while (!shown(stream.items)) {
    if (Date.now() > deadline) throw new Error(`typing stream never went live; errors: ${JSON.stringify(stream.errors)}`);
    await setTyping(s, prober.token, channelId, false);
    await setTyping(s, prober.token, channelId, true);
    await waitUntil(stream, shown, 200).catch(() => undefined);
  }
  await setTyping(s, prober.token, channelId, false);
  await waitUntil(stream, (items) => items.at(-1)?.userId === prober.id && items.at(-1)?.typing === false);
  stream.items.splice(0);
}
