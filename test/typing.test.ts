import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import {
  createChannel,
  createProject,
  createUser,
  errorCode,
  grantAccess,
  ok,
  registerOrg,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import { SET_TYPING, setTyping, typingStream, untilTypingLive, waitUntil } from './helpers/typing.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const ADD = graphql(`
  mutation TypingAddChannelMembers($c: ID!, $u: [ID!]!, $role: ChannelMemberRole) {
    addChannelMembers(channelId: $c, userIds: $u, role: $role) {
      id
    }
  }
`);
const REMOVE = graphql(`
  mutation TypingRemoveChannelMember($c: ID!, $u: ID!) {
    removeChannelMember(channelId: $c, userId: $u) {
      id
    }
  }
`);
const LAST_SEQ = graphql(`
  query TypingChannel($c: ID!) {
    channel(id: $c) {
      lastSeq
    }
  }
`);

/** An organization with a channel holding the owner and two members. */
async function room(): Promise<{ org: TestOrg; a: TestUser; b: TestUser; channelId: string }> {
  const org = await registerOrg(s);
  const [a, b] = await Promise.all([createUser(s, org, 'MEMBER'), createUser(s, org, 'MEMBER')]);
  const channelId = await createChannel(s, org.owner.token, { memberIds: [a.id, b.id] });
  return { org, a, b, channelId };
}

describe('typing', () => {
  it('reaches the other members but not the sender, carries who and until when, and stays out of the log', async () => {
    const { org, a, b, channelId } = await room();
    const seqBefore = ok(await s.gql(LAST_SEQ, { c: channelId }, org.owner.token)).channel.lastSeq;
    const clientA = wsClient(s.url, a.token, { keepOpen: true });
    const clientB = wsClient(s.url, b.token, { keepOpen: true });
    try {
      const streamA = typingStream(clientA, channelId);
      const streamB = typingStream(clientB, channelId);
      await untilTypingLive(streamA, s, org.owner, channelId);
      await untilTypingLive(streamB, s, org.owner, channelId);

      const before = Date.now();
      expect(await setTyping(s, a.token, channelId, true)).toBe(true);
      const [event] = await streamB.waitFor(1);
      expect(event).toMatchObject({ channelId, userId: a.id, typing: true, user: { id: a.id, displayName: a.username } });
      expect(Date.parse(event!.expiresAt!)).toBeGreaterThan(before);

      // The owner's event is published after A's, so once A's stream has it,
      // A's own event would have arrived first.
      // A late stop of the liveness probes may come first under load: wait for the start.
      await setTyping(s, org.owner.token, channelId, true);
      await waitUntil(streamA, (items) => items.some((e) => e.userId === org.owner.id && e.typing));
      expect(streamA.items.filter((e) => e.userId === a.id)).toEqual([]);

      // Ephemeral: nothing was appended to the channel's log.
      expect(ok(await s.gql(LAST_SEQ, { c: channelId }, org.owner.token)).channel.lastSeq).toBe(seqBefore);
    } finally {
      await Promise.all([clientA.dispose(), clientB.dispose()]);
    }
  });

  it('broadcasts one of five quick starts, and a stop at once', async () => {
    const { org, a, b, channelId } = await room();
    const client = wsClient(s.url, b.token, { keepOpen: true });
    try {
      const stream = typingStream(client, channelId);
      await untilTypingLive(stream, s, org.owner, channelId);
      const answers: boolean[] = [];
      for (let i = 0; i < 5; i++) answers.push(await setTyping(s, a.token, channelId, true));
      expect(answers).toEqual([true, false, false, false, false]);
      // The stop is not held back by the throttle, and frees it: typing again shows at once.
      expect(await setTyping(s, a.token, channelId, false)).toBe(true);
      expect(await setTyping(s, a.token, channelId, true)).toBe(true);
      await stream.waitFor(3);
      expect(stream.items.map((e) => [e.userId, e.typing])).toEqual([
        [a.id, true],
        [a.id, false],
        [a.id, true],
      ]);
      expect(stream.items[1]!.expiresAt).toBeNull();
    } finally {
      await client.dispose();
    }
  });

  it('ends a typing state that is not refreshed with typing: false at its expiresAt', async () => {
    const { org, a, b, channelId } = await room();
    const client = wsClient(s.url, b.token, { keepOpen: true });
    try {
      const stream = typingStream(client, channelId);
      await untilTypingLive(stream, s, org.owner, channelId);
      await setTyping(s, a.token, channelId, true);
      const [started] = await stream.waitFor(1);
      const [, expired] = await stream.waitFor(2, 15_000);
      const receivedAt = Date.now();
      expect(expired).toMatchObject({ userId: a.id, typing: false, expiresAt: null, user: { displayName: a.username } });
      // Not before the announced expiry (timers never fire early; 50 ms for clock rounding).
      expect(receivedAt).toBeGreaterThanOrEqual(Date.parse(started!.expiresAt!) - 50);
    } finally {
      await client.dispose();
    }
  });

  it('lets only members type and listen: observers and read-only clients listen, outsiders get NOT_FOUND', async () => {
    const org = await registerOrg(s);
    const other = await registerOrg(s);
    const [outsider, observer, client] = await Promise.all([
      createUser(s, org, 'MEMBER'),
      createUser(s, org, 'MEMBER'),
      createUser(s, org, 'CLIENT'),
    ]);
    const projectId = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, projectId, client.id, 'VIEWER');
    const channelId = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId, memberIds: [client.id] });
    ok(await s.gql(ADD, { c: channelId, u: [observer.id], role: 'OBSERVER' }, org.owner.token));

    const typingAs = (token: string | null) => s.gql(SET_TYPING, { c: channelId, t: true }, token);
    expect(errorCode(await typingAs(outsider.token))).toBe('NOT_FOUND');
    expect(errorCode(await typingAs(other.owner.token))).toBe('NOT_FOUND');
    expect(errorCode(await typingAs(observer.token))).toBe('FORBIDDEN');
    expect(errorCode(await typingAs(client.token))).toBe('FORBIDDEN');
    expect(errorCode(await typingAs(null))).toBe('UNAUTHENTICATED');
    expect(errorCode(await s.gql(SET_TYPING, { c: 'Q2hhbm5lbDpub3Bl', t: true }, org.owner.token))).toBe('NOT_FOUND');

    for (const [token, code] of [
      [outsider.token, 'NOT_FOUND'],
      [other.owner.token, 'NOT_FOUND'],
    ] as const) {
      const ws = wsClient(s.url, token, { keepOpen: true });
      try {
        const stream = typingStream(ws, channelId);
        await stream.done;
        expect(stream.errors[0]?.extensions?.code).toBe(code);
      } finally {
        await ws.dispose();
      }
    }

    // Readers who may not type still see others typing.
    const clients = [observer, client].map((u) => wsClient(s.url, u.token, { keepOpen: true }));
    try {
      const streams = clients.map((ws) => typingStream(ws, channelId));
      for (const stream of streams) await untilTypingLive(stream, s, org.owner, channelId);
      expect(streams.every((stream) => stream.errors.length === 0)).toBe(true);
    } finally {
      await Promise.all(clients.map((ws) => ws.dispose()));
    }
  });

  it('ends the stream of a member removed from the channel with FORBIDDEN', async () => {
    const { org, a, channelId } = await room();
    const client = wsClient(s.url, a.token, { keepOpen: true });
    try {
      const stream = typingStream(client, channelId);
      await untilTypingLive(stream, s, org.owner, channelId);
      ok(await s.gql(REMOVE, { c: channelId, u: a.id }, org.owner.token));
      await stream.done;
      expect(stream.errors[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(errorCode(await s.gql(SET_TYPING, { c: channelId, t: true }, a.token))).toBe('NOT_FOUND');
    } finally {
      await client.dispose();
    }
  });

  it('delivers one state to many subscribers without a query per subscriber', async () => {
    const org = await registerOrg(s);
    const members = await Promise.all(Array.from({ length: 5 }, () => createUser(s, org, 'MEMBER')));
    const [typist, ...listeners] = members as [TestUser, ...TestUser[]];
    const channelId = await createChannel(s, org.owner.token, { memberIds: members.map((m) => m.id) });
    const clients = listeners.map((m) => wsClient(s.url, m.token, { keepOpen: true }));
    try {
      const streams = clients.map((c) => typingStream(c, channelId));
      for (const stream of streams) await untilTypingLive(stream, s, org.owner, channelId);
      const broadcast = async (expected: number) => {
        ok(
          await s.gql(
            graphql(`
              query TypingViewer {
                viewer {
                  id
                }
              }
            `),
            {},
            typist.token,
          ),
        ); // the typist's viewer cached: only typing is counted
        const before = s.app.queryCount();
        await setTyping(s, typist.token, channelId, true);
        await Promise.all(streams.slice(0, expected).map((st) => st.waitFor(1)));
        await setTyping(s, typist.token, channelId, false);
        await Promise.all(streams.slice(0, expected).map((st) => st.waitFor(2)));
        streams.forEach((st) => st.items.splice(0));
        return s.app.queryCount() - before;
      };
      const withFour = await broadcast(4);
      streams.slice(1).forEach((st) => st.unsubscribe());
      await new Promise((r) => setTimeout(r, 100));
      const withOne = await broadcast(1);
      expect(withFour).toBe(withOne);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });
});
