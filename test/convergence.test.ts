import type { GraphQLSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { introspect, possibleTypeNames, selectAll } from './helpers/event-selection.ts';
import {
  createChannel,
  createProject,
  createUser,
  grantAccess,
  ok,
  registerOrg,
  send,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import { actOnRequest, actOnTicket, openTicket } from './helpers/items.ts';
import { collect, type Collected } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { graphql } from './generated/index.ts';

/*
 * Convergence, after Zulip's `verify_action`: whatever happens in a channel,
 * the state a client rebuilds from channelEvents, live or replayed from the
 * start, is the state a fresh query shows, and every seq from 1 to lastSeq
 * arrives exactly once without an error. Each stream selects every field of
 * every event type and of what the events reach (generated from the schema),
 * so a field that cannot resolve for some later state of the data, such as
 * the parent of a message deleted for good, shows up as an error here.
 */

let s: TestServer;
let org: TestOrg;
let people: Record<'owner' | 'alice' | 'bob' | 'carol' | 'dave' | 'agent' | 'client', TestUser>;
let schema: GraphQLSchema;
let EVENTS: string;
/** Every event type a run has delivered, to check the sequences cover them all. */
const seenTypes = new Set<string>();

beforeAll(async () => {
  s = await startServer();
  org = await registerOrg(s);
  const [alice, bob, carol, dave, agent, client] = await Promise.all([
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'STAFF'),
    createUser(s, org, 'CLIENT'),
  ]);
  people = { owner: { ...org.owner, role: 'OWNER' }, alice, bob, carol, dave, agent, client };
  schema = await introspect(s, org.owner.token);
  const { selection, skipped } = selectAll(schema, 'ChannelEvent');
  expect(skipped).toEqual([]);
  EVENTS = `subscription($c: ID!, $after: Int) { channelEvents(channelId: $c, after: $after) { ${selection} } }`;
});
afterAll(async () => {
  await s?.stop();
});

/**
 * An event as the stream delivers it: its selection is built at run time from
 * introspection (selectAll, every field of every event type), so codegen has
 * no document to type it from.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
type Json = any;

interface MessageState {
  id: string;
  seq: number;
  body: string | null;
  edited: boolean;
  editedAt: string | null;
  deleted: boolean;
  createdAt: string;
  clientMessageId: string | null;
  customFields: unknown;
  parentId: string | null;
  senderId: string;
  edits: { previousBody: string | null; editorId: string }[];
}

interface ChannelState {
  seqs: number[];
  archived: boolean;
  /** Member user id -> read marker as the receipts tell it. */
  members: Map<string, number>;
  messages: Map<string, MessageState>;
  /** Request or ticket id -> status, from system events. */
  items: Map<string, string>;
}

/** A message as the API shows it, in an event or a query. */
const fromEvent = (m: Json, edits: MessageState['edits']): MessageState => ({
  id: m.id,
  seq: m.seq,
  body: m.body,
  edited: m.edited,
  editedAt: m.editedAt,
  deleted: m.deleted,
  createdAt: m.createdAt,
  clientMessageId: m.clientMessageId,
  customFields: m.customFields,
  parentId: m.parent?.id ?? null,
  senderId: m.sender.id,
  edits,
});

/** A client's reducer: the channel as the events tell it. */
function rebuild(events: Json[]): ChannelState {
  const state: ChannelState = { seqs: [], archived: false, members: new Map(), messages: new Map(), items: new Map() };
  for (const e of events) {
    state.seqs.push(e.seq);
    seenTypes.add(e.__typename);
    switch (e.__typename) {
      case 'MessageAddedEvent':
        state.messages.set(e.message.id, fromEvent(e.message, []));
        break;
      case 'MessageEditedEvent': {
        const before = state.messages.get(e.message.id);
        expect(before, `edit of a message never added (seq ${e.seq})`).toBeDefined();
        state.messages.set(e.message.id, fromEvent(e.message, [...before!.edits, { previousBody: before!.body, editorId: e.actorId }]));
        break;
      }
      case 'MessageDeletedEvent':
        if (e.hard) {
          state.messages.delete(e.messageId);
          // The rows of its replies stay; they lose their parent.
          for (const m of state.messages.values()) if (m.parentId === e.messageId) m.parentId = null;
        } else {
          const m = state.messages.get(e.messageId);
          expect(m, `delete of a message never added (seq ${e.seq})`).toBeDefined();
          m!.deleted = true;
        }
        break;
      case 'MemberAddedEvent':
        for (const id of e.userIds) state.members.set(id, 0);
        break;
      case 'MemberRemovedEvent':
        state.members.delete(e.userId);
        break;
      case 'ChannelUpdatedEvent':
        if (e.archived !== null) state.archived = e.archived;
        break;
      case 'ReadReceiptEvent':
        state.members.set(e.userId, e.lastReadSeq);
        break;
      case 'SystemEvent':
        state.items.set(e.itemId, e.toStatus);
        break;
      default:
        throw new Error(`the reducer does not know ${e.__typename}: teach it, and this test's sequences, the new event`);
    }
  }
  return state;
}

interface MessageView extends Omit<MessageState, 'edits'> {
  replyCount: number;
  readCount: number;
  edits: MessageState['edits'];
}

interface ChannelView {
  lastSeq: number;
  archived: boolean;
  members: string[];
  messages: MessageView[];
  items: Record<string, string>;
}

/**
 * What is compared. The log never carries a deleted message's body or
 * earlier versions (they are scrubbed so a replay cannot leak them), so for a
 * deleted message those are what only an admin's query shows: left out.
 */
function normalize(m: MessageView): MessageView {
  return m.deleted ? { ...m, body: null, edits: [] } : m;
}

function viewOf(state: ChannelState): ChannelView {
  const messages = [...state.messages.values()].sort((a, b) => a.seq - b.seq);
  return {
    lastSeq: state.seqs.at(-1) ?? 0,
    archived: state.archived,
    members: [...state.members.keys()].sort(),
    messages: messages.map((m) =>
      normalize({
        ...m,
        replyCount: messages.filter((r) => r.parentId === m.id).length,
        readCount: [...state.members].filter(([userId, marker]) => userId !== m.senderId && marker >= m.seq).length,
      }),
    ),
    items: Object.fromEntries([...state.items].sort()),
  };
}

const FRESH = graphql(`
  query ConvergenceChannel($c: ID!) {
    channel(id: $c) {
      lastSeq
      archived
      members {
        edges {
          node {
            user {
              id
            }
          }
        }
      }
      messages {
        edges {
          node {
            id
            seq
            body
            edited
            editedAt
            deleted
            createdAt
            clientMessageId
            customFields
            replyCount
            readCount
            parent {
              id
            }
            sender {
              id
            }
            edits {
              edges {
                node {
                  previousBody
                  editor {
                    id
                  }
                }
              }
            }
          }
        }
      }
    }
  }
`);

/** The channel as a fresh query shows it to `token`'s user. */
async function freshView(token: string, channelId: string, itemIds: string[]): Promise<ChannelView> {
  const { channel } = ok(await s.gql(FRESH, { c: channelId }, token));
  const items: Record<string, string> = {};
  for (const id of [...itemIds].sort()) {
    const kind = Buffer.from(id, 'base64').toString('utf8').split(':')[0];
    items[id] =
      kind === 'SupportTicket'
        ? ok(
            await s.gql(
              graphql(`
                query ConvergenceTicketStatus($id: ID!) {
                  item: supportTicket(id: $id) {
                    status
                  }
                }
              `),
              { id },
              token,
            ),
          ).item.status
        : ok(
            await s.gql(
              graphql(`
                query ConvergenceRequestStatus($id: ID!) {
                  item: clientRequest(id: $id) {
                    status
                  }
                }
              `),
              { id },
              token,
            ),
          ).item.status;
  }
  return {
    lastSeq: channel.lastSeq,
    archived: channel.archived,
    members: channel.members.edges.map((e) => e.node.user.id).sort(),
    messages: channel.messages.edges.map(({ node: m }) =>
      normalize({
        ...fromEvent(
          m,
          m.edits.edges.map((e) => ({ previousBody: e.node.previousBody, editorId: e.node.editor.id })),
        ),
        replyCount: m.replyCount,
        readCount: m.readCount,
      }),
    ),
    items,
  };
}

const lastSeqOf = async (token: string, channelId: string) =>
  ok(
    await s.gql(
      graphql(`
        query ConvergenceLastSeq($c: ID!) {
          channel(id: $c) {
            lastSeq
          }
        }
      `),
      { c: channelId },
      token,
    ),
  ).channel.lastSeq;

/** Waits until the stream has delivered `seq` (or fails with what it has). */
async function until(stream: Collected<Json>, seq: number): Promise<Json[]> {
  const deadline = Date.now() + 20_000;
  while ((stream.items.at(-1)?.seq ?? 0) < seq) {
    if (Date.now() > deadline || stream.errors.length) {
      throw new Error(`stream at seq ${stream.items.at(-1)?.seq ?? 0} of ${seq}; errors: ${JSON.stringify(stream.errors)}`);
    }
    await stream.waitFor(stream.items.length + 1, 200).catch(() => undefined);
  }
  return stream.items;
}

/**
 * Subscribes `observer` to the channel from its start, runs `act`, and checks
 * that the live stream, a replay from `after: 0` and a fresh query agree.
 */
async function verify(observer: TestUser, channelId: string, act: () => Promise<void>): Promise<void> {
  const client = wsClient(s.url, observer.token, { keepOpen: true });
  try {
    const live = collect(client, EVENTS, { c: channelId, after: 0 }, (d) => d.channelEvents);
    await until(live, await lastSeqOf(observer.token, channelId)); // caught up: live from here
    await act();
    const lastSeq = await lastSeqOf(observer.token, channelId);
    await until(live, lastSeq);
    const replay = collect(client, EVENTS, { c: channelId, after: 0 }, (d) => d.channelEvents);
    await until(replay, lastSeq);
    await new Promise((r) => setTimeout(r, 100)); // nothing may follow
    replay.unsubscribe();
    live.unsubscribe();

    const everySeq = Array.from({ length: lastSeq }, (_, i) => i + 1);
    const itemIds = new Set<string>();
    for (const [name, stream] of [
      ['live', live],
      ['replay', replay],
    ] as const) {
      expect(stream.errors, `${name}: errors`).toEqual([]);
      expect(
        stream.items.map((e) => e.seq),
        `${name}: every seq exactly once`,
      ).toEqual(everySeq);
      for (const e of stream.items) if (e.__typename === 'SystemEvent') itemIds.add(e.itemId);
    }
    const fresh = await freshView(observer.token, channelId, [...itemIds]);
    expect(fresh.lastSeq).toBe(lastSeq);
    expect(viewOf(rebuild(live.items)), 'live stream vs fresh query').toEqual(fresh);
    expect(viewOf(rebuild(replay.items)), 'replay vs fresh query').toEqual(fresh);
  } finally {
    await client.dispose();
  }
}

const gqlOk = async <R, V>(token: string, query: TypedDocumentNode<R, V>, variables: V) => ok(await s.gql(query, variables, token));
const edit = (token: string, id: string, body: string) =>
  gqlOk(
    token,
    graphql(`
      mutation ConvergenceEditMessage($id: ID!, $b: String!) {
        editMessage(input: { id: $id, body: $b }) {
          id
        }
      }
    `),
    { id, b: body },
  );
const remove = (token: string, id: string, hard = false) =>
  gqlOk(
    token,
    graphql(`
      mutation ConvergenceDeleteMessage($id: ID!, $h: Boolean) {
        deleteMessage(input: { id: $id, hard: $h }) {
          hard
        }
      }
    `),
    { id, h: hard },
  );
const markRead = async (token: string, channelId: string) =>
  gqlOk(
    token,
    graphql(`
      mutation ConvergenceMarkChannelRead($c: ID!, $seq: Int!) {
        markChannelRead(channelId: $c, seq: $seq) {
          id
        }
      }
    `),
    { c: channelId, seq: await lastSeqOf(token, channelId) },
  );
const archive = (token: string, channelId: string, archived: boolean) =>
  gqlOk(
    token,
    graphql(`
      mutation ConvergenceArchiveChannel($c: ID!, $a: Boolean) {
        archiveChannel(channelId: $c, archived: $a) {
          id
        }
      }
    `),
    { c: channelId, a: archived },
  );

describe('convergence: live events, a replay from the start and a fresh query agree', () => {
  it('in a group channel: sends, threads, edits, soft and hard deletes, members coming and going, receipts, archiving', async () => {
    const { owner, alice, bob, carol, dave } = people;
    const channelId = await createChannel(s, owner.token, { memberIds: [alice.id, bob.id] });
    await verify(alice, channelId, async () => {
      const root = await send(s, owner.token, channelId, 'root', { clientMessageId: 'root-1', customFields: { kind: 'kickoff', n: 1 } });
      const bobReply = await send(s, bob.token, channelId, 'bob replies', { parentId: root.id });
      await send(s, alice.token, channelId, 'alice replies', { parentId: bobReply.id }); // joins the root's thread
      await edit(owner.token, root.id, 'root v2');
      await edit(owner.token, root.id, 'root v3');
      await markRead(bob.token, channelId);

      // A thread whose root is deleted for good, replies and edits included.
      const doomed = await send(s, owner.token, channelId, 'parent to purge');
      const r1 = await send(s, bob.token, channelId, 'reply one', { parentId: doomed.id });
      const r2 = await send(s, alice.token, channelId, 'reply two', { parentId: doomed.id });
      await edit(alice.token, r2.id, 'reply two, edited');
      await edit(owner.token, doomed.id, 'parent to purge, edited');
      await markRead(alice.token, channelId);
      await remove(owner.token, doomed.id, true);

      // Soft deletes: an edited message by its author, a reply by staff.
      const soft = await send(s, bob.token, channelId, 'soft one');
      await edit(bob.token, soft.id, 'soft one, edited');
      await remove(bob.token, soft.id);
      await remove(owner.token, r1.id);
      // Deleted for good after a soft delete, and a plain message deleted for good.
      const twice = await send(s, alice.token, channelId, 'deleted twice');
      await remove(alice.token, twice.id);
      await remove(owner.token, twice.id, true);
      const plain = await send(s, bob.token, channelId, 'purged plain');
      await edit(bob.token, plain.id, 'purged plain, edited');
      await remove(owner.token, plain.id, true);

      // Members: added, reading, removed, leaving, re-added; a sender deactivated.
      await gqlOk(
        owner.token,
        graphql(`
          mutation ConvergenceAddChannelMembers($c: ID!, $u: [ID!]!) {
            addChannelMembers(channelId: $c, userIds: $u, role: OBSERVER) {
              id
            }
          }
        `),
        { c: channelId, u: [carol.id, dave.id] },
      );
      await markRead(carol.token, channelId);
      await gqlOk(
        owner.token,
        graphql(`
          mutation ConvergenceRemoveChannelMember($c: ID!, $u: ID!) {
            removeChannelMember(channelId: $c, userId: $u) {
              id
            }
          }
        `),
        { c: channelId, u: carol.id },
      );
      await send(s, owner.token, channelId, 'after carol');
      await gqlOk(
        dave.token,
        graphql(`
          mutation ConvergenceLeaveChannel($c: ID!) {
            leaveChannel(channelId: $c)
          }
        `),
        { c: channelId },
      );
      await gqlOk(
        owner.token,
        graphql(`
          mutation ConvergenceReAddMembers($c: ID!, $u: [ID!]!) {
            addChannelMembers(channelId: $c, userIds: $u) {
              id
            }
          }
        `),
        { c: channelId, u: [carol.id] },
      );
      await send(s, bob.token, channelId, 'bob, last words');
      await gqlOk(
        bob.token,
        graphql(`
          mutation ConvergenceLeaveChannel($c: ID!) {
            leaveChannel(channelId: $c)
          }
        `),
        { c: channelId },
      );
      await gqlOk(
        owner.token,
        graphql(`
          mutation ConvergenceDeactivateUser($u: ID!) {
            deactivateUser(userId: $u) {
              id
            }
          }
        `),
        { u: bob.id },
      );

      // Archived (read-only, purging still allowed), reopened, then more traffic.
      await archive(owner.token, channelId, true);
      const lastBob = (
        await gqlOk(
          owner.token,
          graphql(`
            query ConvergenceLastMessage($c: ID!) {
              channel(id: $c) {
                messages(last: 1) {
                  edges {
                    node {
                      id
                    }
                  }
                }
              }
            }
          `),
          { c: channelId },
        )
      ).channel.messages.edges[0]!.node.id;
      await remove(owner.token, lastBob, true);
      await archive(owner.token, channelId, false);
      await send(s, carol.token, channelId, 'carol is back', { parentId: root.id });
      await markRead(alice.token, channelId);
      await mute(alice, channelId);
    });
  });

  it('in a project channel: a client whose access is revoked, and a request made from a message', async () => {
    const { owner, alice, agent, client } = people;
    const projectId = await createProject(s, owner.token);
    await grantAccess(s, owner.token, projectId, client.id, 'CLIENT');
    const channelId = await createChannel(s, owner.token, { kind: 'PROJECT', projectId, memberIds: [alice.id, agent.id, client.id] });
    // The owner (an admin, who sees deleted bodies in queries) observes.
    await verify(owner, channelId, async () => {
      const ask = await send(s, client.token, channelId, 'we need bricks');
      await send(s, agent.token, channelId, 'how many?', { parentId: ask.id });
      await edit(client.token, ask.id, 'we need 500 bricks');
      ok(await actOnRequest(s, owner.token, 'approve', await requestFrom(client, projectId, ask.id)));
      await remove(agent.token, ask.id);
      await markRead(client.token, channelId);
      await gqlOk(
        owner.token,
        graphql(`
          mutation ConvergenceRevokeProjectAccess($p: ID!, $u: ID!) {
            revokeProjectAccess(projectId: $p, userId: $u)
          }
        `),
        { p: projectId, u: client.id },
      );
      await remove(owner.token, ask.id, true);
      await send(s, alice.token, channelId, 'the client is gone');
    });
  });

  it('in a client request\u2019s conversation: system events for every change beside its messages', async () => {
    const { owner, client } = people;
    const projectId = await createProject(s, owner.token);
    await grantAccess(s, owner.token, projectId, client.id, 'CLIENT');
    const first = await requestFrom(client, projectId);
    const withdrawn = await requestFrom(client, projectId);
    const { channelId } = ok(
      await s.gql(
        graphql(`
          query ConvergenceClientRequest($id: ID!) {
            clientRequest(id: $id) {
              channelId
            }
          }
        `),
        { id: first },
        client.token,
      ),
    ).clientRequest;
    await verify(client, channelId, async () => {
      const m = await send(s, client.token, channelId, 'details: red bricks');
      await gqlOk(
        client.token,
        graphql(`
          mutation ConvergenceUpdateClientRequest($input: UpdateClientRequestInput!) {
            updateClientRequest(input: $input) {
              id
            }
          }
        `),
        { input: { id: first, title: 'Red bricks' } },
      );
      await edit(client.token, m.id, 'details: 500 red bricks');
      // The owner decides, so is in the conversation and may purge from it.
      ok(await actOnRequest(s, owner.token, 'convert', first, { text: 'as change order' }));
      await send(s, owner.token, channelId, 'converted', { parentId: m.id });
      await remove(owner.token, m.id, true);
      await markRead(client.token, channelId);
    });
    ok(await actOnRequest(s, client.token, 'withdraw', withdrawn, { text: 'not needed' }));
  });

  it('in a support ticket\u2019s conversation: the whole life of a ticket', async () => {
    const { owner, alice, agent } = people;
    const ticket = await openTicket(s, alice.token, { subject: 'Printer on fire' });
    await verify(alice, ticket.channelId, async () => {
      const c = ticket.channelId;
      const id = ticket.id;
      // Assigned to the owner first, who so joins the conversation and may purge from it.
      ok(await actOnTicket(s, owner.token, 'assign', id));
      ok(await actOnTicket(s, owner.token, 'assign', id, { assigneeId: agent.id }));
      const answer = await send(s, agent.token, c, 'Have you tried water?');
      ok(await actOnTicket(s, agent.token, 'pendingUser', id));
      await send(s, alice.token, c, 'It is an electrical fire', { parentId: answer.id });
      ok(await actOnTicket(s, agent.token, 'inProgress', id));
      ok(await actOnTicket(s, agent.token, 'priority', id));
      ok(await actOnTicket(s, agent.token, 'category', id, { category: 'TECHNICAL' }));
      ok(await actOnTicket(s, agent.token, 'escalate', id));
      await remove(owner.token, answer.id, true);
      ok(await actOnTicket(s, agent.token, 'resolve', id));
      ok(await actOnTicket(s, alice.token, 'reopen', id));
      ok(await actOnTicket(s, agent.token, 'resolve', id));
      ok(await actOnTicket(s, alice.token, 'rate', id));
      await markRead(alice.token, c);
      ok(await actOnTicket(s, alice.token, 'close', id));
    });
  });

  it('the sequences above deliver every event type there is', () => {
    expect([...seenTypes].sort()).toEqual(possibleTypeNames(schema, 'ChannelEvent'));
  });
});

/** Files a request in the project (from a message when given) and returns its id. */
async function requestFrom(client: TestUser, projectId: string, fromMessageId?: string): Promise<string> {
  const data = await gqlOk(
    client.token,
    graphql(`
      mutation ConvergenceCreateClientRequest($input: CreateClientRequestInput!) {
        createClientRequest(input: $input) {
          id
        }
      }
    `),
    { input: { projectId, title: 'Bricks', description: '500 bricks', type: 'MATERIAL', ...(fromMessageId ? { fromMessageId } : {}) } },
  );
  return data.createClientRequest.id;
}

/** Mute and hide are the viewer's own settings, not channel history: they must log nothing. */
async function mute(user: TestUser, channelId: string) {
  const before = await lastSeqOf(user.token, channelId);
  await gqlOk(
    user.token,
    graphql(`
      mutation ConvergenceMuteChannel($c: ID!) {
        muteChannel(channelId: $c) {
          id
        }
      }
    `),
    { c: channelId },
  );
  await gqlOk(
    user.token,
    graphql(`
      mutation ConvergenceHideChannel($c: ID!) {
        hideChannel(channelId: $c) {
          id
        }
      }
    `),
    { c: channelId },
  );
  await gqlOk(
    user.token,
    graphql(`
      mutation ConvergenceUnhideChannel($c: ID!) {
        hideChannel(channelId: $c, hidden: false) {
          id
        }
      }
    `),
    { c: channelId },
  );
  expect(await lastSeqOf(user.token, channelId)).toBe(before);
}
