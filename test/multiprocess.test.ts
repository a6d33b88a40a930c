import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './helpers/app.ts';
import { createUser, errorCode, ok, registerOrg, send, type TestOrg } from './helpers/fixtures.ts';
import { startTestServerProcess, type ServerProcessEndpoint } from './helpers/process.ts';
import { collect, expectExactly, untilLive } from './helpers/subscription.ts';
import { setTyping, typingStream, untilTypingLive } from './helpers/typing.ts';
import { liveSocket, wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

// Two server processes (src/server.ts, as `npm start` runs it) on one
// database and one Redis prefix, as behind a load balancer. Viewers are cached
// for a minute, so only the pub/sub signal can make the second process notice
// a change in time.
let a: ServerProcessEndpoint;
let b: ServerProcessEndpoint;
beforeAll(async () => {
  [a, b] = await Promise.all([startTestServerProcess({ VIEWER_CACHE_MS: '60000' }), startTestServerProcess({ VIEWER_CACHE_MS: '60000' })]);
  expect(a.child.pid).not.toBe(b.child.pid);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

/** Well under the cache TTL: only the pub/sub signal can make it in time. */
const within = (check: () => Promise<boolean>) => eventually(check, 3000);

/** A new session of the user through `server`: its access token. */
async function signIn(server: ServerProcessEndpoint, org: TestOrg, username: string): Promise<string> {
  return ok(
    await server.gql(
      graphql(`
        mutation MultiprocessLogin($o: String!, $u: String!, $p: String!) {
          login(organization: $o, username: $u, password: $p) {
            token
          }
        }
      `),
      { o: org.slug, u: username, p: 'password123' },
    ),
  ).login.token;
}

describe('two server processes', () => {
  it('a user deactivated through one process is refused by the other', async () => {
    const org = await registerOrg(a);
    const member = await createUser(a, org, 'MEMBER');
    expect(
      ok(
        await b.gql(
          graphql(`
            query MultiprocessViewer {
              viewer {
                id
              }
            }
          `),
          {},
          member.token,
        ),
      ).viewer.id,
    ).toBe(member.id);
    ok(
      await a.gql(
        graphql(`
          mutation MultiprocessDeactivateUser($id: ID!) {
            deactivateUser(userId: $id) {
              id
            }
          }
        `),
        { id: member.id },
        org.owner.token,
      ),
    );
    expect(
      await within(
        async () =>
          errorCode(
            await b.gql(
              graphql(`
                query MultiprocessViewer {
                  viewer {
                    id
                  }
                }
              `),
              {},
              member.token,
            ),
          ) === 'UNAUTHENTICATED',
      ),
    ).toBe(true);
    ok(
      await a.gql(
        graphql(`
          mutation MultiprocessReactivateUser($id: ID!) {
            reactivateUser(userId: $id) {
              id
            }
          }
        `),
        { id: member.id },
        org.owner.token,
      ),
    );
    // Deactivation ended the user's sessions: reactivated, they sign in again, and the new token works on the other process.
    const again = await signIn(a, org, member.username);
    expect(
      await within(
        async () =>
          (
            await b.gql(
              graphql(`
                query MultiprocessViewer {
                  viewer {
                    id
                  }
                }
              `),
              {},
              again,
            )
          ).data?.viewer?.id === member.id,
      ),
    ).toBe(true);
  });

  it('a session revoked through one process is refused by the other, and its socket there closes with 4401', async () => {
    const org = await registerOrg(a);
    const member = await createUser(a, org, 'MEMBER');
    // member.token is the first session; the second revokes it.
    const second = await signIn(a, org, member.username);
    const socket = liveSocket(b.url, { authToken: member.token });
    try {
      expect(await socket.acked).toBe(true);
      const first = ok(
        await a.gql(
          graphql(`
            query MultiprocessSessions {
              sessions {
                edges {
                  node {
                    id
                    current
                  }
                }
              }
            }
          `),
          {},
          second,
        ),
      ).sessions.edges.find((e) => !e.node.current)!.node.id;
      ok(
        await a.gql(
          graphql(`
            mutation MultiprocessRevokeSession($id: ID!) {
              revokeSession(id: $id)
            }
          `),
          { id: first },
          second,
        ),
      );
      const closed = await Promise.race([socket.closed, new Promise<null>((resolve) => setTimeout(() => resolve(null), 3000))]);
      expect(closed?.code).toBe(4401);
      const viewerOnB = async (token: string) =>
        errorCode(
          await b.gql(
            graphql(`
              query MultiprocessSessionViewer {
                viewer {
                  id
                }
              }
            `),
            {},
            token,
          ),
        );
      expect(await within(async () => (await viewerOnB(member.token)) === 'UNAUTHENTICATED')).toBe(true);
      expect(await viewerOnB(second)).toBeUndefined();
    } finally {
      await socket.client.dispose();
    }
  });

  it('a role change through one process applies in the other', async () => {
    const org = await registerOrg(a);
    const member = await createUser(a, org, 'MEMBER');
    expect(
      ok(
        await b.gql(
          graphql(`
            query MultiprocessViewerRole {
              viewer {
                role
              }
            }
          `),
          {},
          member.token,
        ),
      ).viewer.role,
    ).toBe('MEMBER');
    ok(
      await a.gql(
        graphql(`
          mutation MultiprocessChangeUserRole($id: ID!) {
            changeUserRole(userId: $id, role: ADMIN) {
              id
            }
          }
        `),
        { id: member.id },
        org.owner.token,
      ),
    );
    expect(
      await within(
        async () =>
          (
            await b.gql(
              graphql(`
                query MultiprocessViewerRole {
                  viewer {
                    role
                  }
                }
              `),
              {},
              member.token,
            )
          ).data?.viewer?.role === 'ADMIN',
      ),
    ).toBe(true);
  });

  it('serves one channel from both processes', async () => {
    const org = await registerOrg(a);
    const created = ok(
      await a.gql(
        graphql(`
          mutation MultiprocessCreateChannel {
            createChannel(input: { kind: GROUP, name: "shared" }) {
              id
            }
          }
        `),
        {},
        org.owner.token,
      ),
    );
    const channelId = created.createChannel.id;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).gql(
          graphql(`
            mutation MultiprocessSendMessage($c: ID!, $b: String!) {
              sendMessage(input: { channelId: $c, body: $b }) {
                seq
              }
            }
          `),
          { c: channelId, b: `m${i}` },
          org.owner.token,
        ),
      ),
    );
    const history = ok(
      await b.gql(
        graphql(`
          query MultiprocessChannel($c: ID!) {
            channel(id: $c) {
              lastSeq
              messages(first: 20) {
                edges {
                  node {
                    seq
                  }
                }
              }
            }
          }
        `),
        { c: channelId },
        org.owner.token,
      ),
    );
    expect(history.channel.messages.edges.map((e: { node: { seq: number } }) => e.node.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(history.channel.lastSeq).toBe(11);
  });

  it('a subscriber on one process receives, in order, what is sent through the other', async () => {
    const org = await registerOrg(a);
    const created = ok(
      await a.gql(
        graphql(`
          mutation MultiprocessCreateLiveChannel {
            createChannel(input: { kind: GROUP, name: "live" }) {
              id
            }
          }
        `),
        {},
        org.owner.token,
      ),
    );
    const channelId = created.createChannel.id;
    const client = wsClient(b.url, org.owner.token, { keepOpen: true });
    try {
      const stream = collect(
        client,
        graphql(`
          subscription MultiprocessChannelEvents($c: ID!) {
            channelEvents(channelId: $c) {
              seq
              ... on MessageAddedEvent {
                message {
                  body
                }
              }
            }
          }
        `),
        { c: channelId },
        (data) => data.channelEvents as { seq: number; message: { body: string } },
      );
      const [probe] = await untilLive(stream, () => send(a, org.owner.token, channelId, 'probe'));
      const seen = stream.items.length;
      await Promise.all(Array.from({ length: 30 }, (_, i) => send(a, org.owner.token, channelId, `m${i}`)));
      const events = await stream.waitFor(seen + 30);
      expectExactly(
        events.map((e) => e.seq),
        probe!.seq,
        probe!.seq + seen + 29,
      );
      expect(new Set(events.slice(seen).map((e) => e.message.body)).size).toBe(30);
    } finally {
      await client.dispose();
    }
  });

  it('presence follows a user’s sockets on both processes: online while either is open', async () => {
    const org = await registerOrg(a);
    const member = await createUser(a, org, 'MEMBER');
    const WATCH = graphql(`
      subscription MultiprocessPresence($u: [ID!]!) {
        presence(userIds: $u) {
          userId
          status
        }
      }
    `);
    const watcher = wsClient(b.url, org.owner.token, { keepOpen: true });
    /** A socket of the member's, counted once its connection is acknowledged (a query proves it). */
    const connect = async (server: ServerProcessEndpoint) => {
      const socket = wsClient(server.url, member.token, { keepOpen: true });
      await new Promise((resolve) =>
        socket.subscribe({ query: '{ viewer { id } }' }, { next: resolve, error: resolve, complete: () => {} }),
      );
      return socket;
    };
    const statusOn = async (server: ServerProcessEndpoint) =>
      ok(
        await server.gql(
          graphql(`
            query MultiprocessPresenceStatus($u: [ID!]!) {
              presence(userIds: $u) {
                status
              }
            }
          `),
          { u: [member.id] },
          org.owner.token,
        ),
      ).presence[0]!.status;
    try {
      const stream = collect(watcher, WATCH, { u: [member.id] }, (d) => d.presence.status);
      expect(await stream.waitFor(1)).toEqual(['OFFLINE']);
      const onA = await connect(a);
      expect((await stream.waitFor(2))[1]).toBe('ONLINE'); // connected to A, watched on B
      const onB = await connect(b);
      await onA.dispose();
      await new Promise((r) => setTimeout(r, 300));
      expect(await statusOn(a)).toBe('ONLINE'); // the socket on B still counts, on both
      expect(stream.items).toEqual(['OFFLINE', 'ONLINE']);
      await onB.dispose();
      expect((await stream.waitFor(3))[2]).toBe('OFFLINE');
      expect(await statusOn(a)).toBe('OFFLINE');
    } finally {
      await watcher.dispose();
    }
  });

  it('typing set through one process reaches a subscriber on the other, throttled across both', async () => {
    const org = await registerOrg(a);
    const member = await createUser(a, org, 'MEMBER');
    const created = ok(
      await a.gql(
        graphql(`
          mutation MultiprocessCreateTypingChannel($m: [ID!]) {
            createChannel(input: { kind: GROUP, name: "typing", memberIds: $m }) {
              id
            }
          }
        `),
        { m: [member.id] },
        org.owner.token,
      ),
    );
    const channelId = created.createChannel.id;
    const client = wsClient(b.url, org.owner.token, { keepOpen: true });
    try {
      const stream = typingStream(client, channelId);
      // Typing through A until B's subscriber shows it.
      await untilTypingLive(stream, a, member, channelId);
      expect(await setTyping(a, member.token, channelId, true)).toBe(true);
      const [started] = await stream.waitFor(1);
      expect(started).toMatchObject({ channelId, userId: member.id, typing: true, user: { displayName: member.username } });
      // The throttle window opened through A holds on B too: B broadcasts nothing.
      expect(await setTyping(b, member.token, channelId, true)).toBe(false);
      expect(await setTyping(a, member.token, channelId, false)).toBe(true);
      const events = await stream.waitFor(2);
      expect(events.map((e) => [e.userId, e.typing])).toEqual([
        [member.id, true],
        [member.id, false],
      ]);
    } finally {
      await client.dispose();
    }
  });
});
