import type { GraphQLSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type GqlResult, type TestServer } from './helpers/app.ts';
import { introspect, possibleTypeNames, selectAll } from './helpers/event-selection.ts';
import {
  createChannel,
  createProject,
  createUser,
  errorCode,
  grantAccess,
  ok,
  registerOrg,
  send,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import { png } from './helpers/files.ts';
import { actOnRequest, actOnTicket, openTicket } from './helpers/items.ts';
import { uploadFile } from './helpers/upload.ts';
import { collect, type Collected } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { graphql } from './generated/index.ts';
import type { UpdateChannelInput } from './generated/graphql.ts';

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
  /** File ids, in order (events show a message's files as they are when delivered). */
  attachments: string[];
}

/** A channel's settings, as updateChannel changes them and ChannelUpdatedEvent tells. */
interface Settings {
  name: string | null;
  topic: string | null;
  description: string | null;
  customFields: unknown;
  visibility: string;
  membersMayPin: boolean;
  slowModeSeconds: number;
}
const SETTINGS = [
  'name',
  'topic',
  'description',
  'customFields',
  'visibility',
  'membersMayPin',
  'slowModeSeconds',
] as const satisfies readonly (keyof Settings)[];

/** A member's markers as the receipts tell them. */
interface Markers {
  read: number;
  delivered: number;
}

/** One emoji on one message: the count the last event set, and who reacted, each with the seq of their reaction. */
interface ReactionState {
  count: number;
  users: { id: string; seq: number }[];
}

interface ChannelState {
  seqs: number[];
  archived: boolean;
  settings: Settings;
  /** Member user id -> markers. */
  members: Map<string, Markers>;
  messages: Map<string, MessageState>;
  /** Message id -> emoji -> reactions. */
  reactions: Map<string, Map<string, ReactionState>>;
  /** Message id -> who pinned it, and the seq of the pin (the newest pin is listed first). */
  pins: Map<string, { by: string; seq: number }>;
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
  attachments: m.attachments.map((a: { id: string }) => a.id),
});

/**
 * A client's reducer: the channel as the events tell it, from `settings`, the
 * channel's settings before its first event (a channel's creation logs only
 * its members).
 */
function rebuild(events: Json[], settings: Settings): ChannelState {
  const state: ChannelState = {
    seqs: [],
    archived: false,
    settings: { ...settings },
    members: new Map(),
    messages: new Map(),
    reactions: new Map(),
    pins: new Map(),
    items: new Map(),
  };
  const markers = (userId: string) => {
    const m = state.members.get(userId);
    expect(m, `a receipt of ${userId}, who is not a member`).toBeDefined();
    return m!;
  };
  /** A member's markers as compared (see markersOf), among the messages there are at this point of the log. */
  const markersAt = (userId: string, read: number, delivered: number) => markersOf([...state.messages.values()], userId, read, delivered);
  const message = (e: Json) => {
    const m = state.messages.get(e.messageId);
    expect(m, `${e.__typename} of a message never added or gone (seq ${e.seq})`).toBeDefined();
    expect(e.messageSeq, `${e.__typename}.messageSeq (seq ${e.seq})`).toBe(m!.seq);
    return m!;
  };
  for (const e of events) {
    // Fields that event types declare with different types would come aliased
    // `<field><Type>` (selectAll): read them by their names.
    for (const [key, value] of Object.entries(e)) {
      if (key.endsWith(e.__typename) && key !== e.__typename) e[key.slice(0, -e.__typename.length)] = value;
    }
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
          // Its reactions and its pin go with it (the server's foreign keys cascade).
          state.reactions.delete(e.messageId);
          state.pins.delete(e.messageId);
          // The rows of its replies stay; they lose their parent.
          for (const m of state.messages.values()) if (m.parentId === e.messageId) m.parentId = null;
        } else {
          const m = state.messages.get(e.messageId);
          expect(m, `delete of a message never added (seq ${e.seq})`).toBeDefined();
          // Reactions and the pin stay: the row does.
          m!.deleted = true;
        }
        break;
      case 'MemberAddedEvent':
        for (const id of e.userIds) state.members.set(id, { read: 0, delivered: 0 });
        break;
      case 'MemberRemovedEvent':
        state.members.delete(e.userId);
        break;
      case 'ChannelUpdatedEvent': {
        const changed = new Set<string>(e.changed);
        expect(changed.size, `an update that changes nothing (seq ${e.seq})`).toBeGreaterThan(0);
        for (const key of changed) expect(['archived', ...SETTINGS], `changed names a field there is not`).toContain(key);
        // A field not in `changed` is null; one in it is the new value (null: cleared).
        for (const key of ['archived', ...SETTINGS] as const)
          if (!changed.has(key)) expect(e[key], `${key} not changed (seq ${e.seq})`).toBeNull();
        if (changed.has('archived')) state.archived = e.archived;
        for (const key of SETTINGS) if (changed.has(key)) (state.settings as unknown as Record<string, unknown>)[key] = e[key];
        break;
      }
      case 'ReadReceiptEvent': {
        // Forward (markChannelRead) or back (markChannelUnread). Reading implies
        // delivery: the delivery marker ends at max(previousDeliveredSeq, lastReadSeq).
        const m = markers(e.userId);
        expect(e.previousReadSeq, `previousReadSeq (seq ${e.seq})`).not.toBeNull();
        expect(e.previousReadSeq, `a receipt that does not move (seq ${e.seq})`).not.toBe(e.lastReadSeq);
        // The markers may have moved without a receipt since (past no message), never the delivery marker back.
        expect(e.previousDeliveredSeq, `previousDeliveredSeq (seq ${e.seq})`).toBeGreaterThanOrEqual(m.delivered);
        expect(markersAt(e.userId, e.previousReadSeq, e.previousDeliveredSeq), `the markers before (seq ${e.seq})`).toEqual(
          markersAt(e.userId, m.read, m.delivered),
        );
        m.read = e.lastReadSeq;
        m.delivered = Math.max(m.delivered, e.previousDeliveredSeq, e.lastReadSeq);
        break;
      }
      case 'DeliveryReceiptEvent': {
        const m = markers(e.userId);
        expect(e.previousDeliveredSeq, `previousDeliveredSeq (seq ${e.seq})`).toBeGreaterThanOrEqual(m.delivered);
        expect(markersAt(e.userId, m.read, e.previousDeliveredSeq), `the marker before (seq ${e.seq})`).toEqual(
          markersAt(e.userId, m.read, m.delivered),
        );
        expect(e.lastDeliveredSeq, `a delivery receipt that does not move forward (seq ${e.seq})`).toBeGreaterThan(e.previousDeliveredSeq);
        m.delivered = e.lastDeliveredSeq;
        break;
      }
      case 'ReactionChangedEvent': {
        const m = message(e);
        expect(m.deleted, `a reaction change on a deleted message (seq ${e.seq})`).toBe(false);
        const emoji = state.reactions.get(m.id) ?? new Map<string, ReactionState>();
        state.reactions.set(m.id, emoji);
        const r = emoji.get(e.emoji) ?? { count: 0, users: [] };
        const had = r.users.some((u) => u.id === e.userId);
        expect(had, `${e.added ? 'an add of a reaction the user has' : 'a removal of a reaction the user has not'} (seq ${e.seq})`).toBe(
          !e.added,
        );
        // The count is set from the event, not counted: a client that joins late has no users list to count.
        r.count = e.count;
        r.users = e.added ? [...r.users, { id: e.userId, seq: e.seq }] : r.users.filter((u) => u.id !== e.userId);
        if (r.count === 0) emoji.delete(e.emoji);
        else emoji.set(e.emoji, r);
        break;
      }
      case 'MessagePinnedEvent': {
        const m = message(e);
        expect(state.pins.has(m.id), `a pin of a pinned message (seq ${e.seq})`).toBe(false);
        state.pins.set(m.id, { by: e.pinnedById, seq: e.seq });
        break;
      }
      case 'MessageUnpinnedEvent': {
        const m = message(e);
        expect(state.pins.has(m.id), `an unpin of a message not pinned (seq ${e.seq})`).toBe(true);
        state.pins.delete(m.id);
        break;
      }
      case 'SystemEvent':
        state.items.set(e.itemId, e.toStatus);
        break;
      case 'AttachmentAddedEvent':
        // Files added to the channel's request: not part of the messages compared here.
        break;
      case 'AttachmentRemovedEvent': {
        // A request's file (no message) is not part of the messages compared here.
        if (e.attachedToSeq === null) break;
        const m = message({ ...e, messageId: e.attachedToId, messageSeq: e.attachedToSeq });
        // A replayed MessageAddedEvent shows the files as they are now: the removed one may be gone already.
        m.attachments = m.attachments.filter((id) => id !== e.attachmentId);
        break;
      }
      default:
        throw new Error(`the reducer does not know ${e.__typename}: teach it, and this test's sequences, the new event`);
    }
  }
  return state;
}

interface ReactionView {
  emoji: string;
  count: number;
  userIds: string[];
}

interface MessageView extends Omit<MessageState, 'edits'> {
  replyCount: number;
  readCount: number;
  edits: MessageState['edits'];
  reactions: ReactionView[];
  pinnedBy: string | null;
}

interface MemberView {
  userId: string;
  lastReadSeq: number;
  lastDeliveredSeq: number;
}

interface ChannelView {
  lastSeq: number;
  archived: boolean;
  settings: Settings;
  members: MemberView[];
  messages: MessageView[];
  /** Newest pin first, as the viewer sees the list. */
  pinnedMessages: string[];
  items: Record<string, string>;
}

/**
 * What is compared. The log never carries a deleted message's body or
 * earlier versions (they are scrubbed so a replay cannot leak them), so for a
 * deleted message those are what only an admin's query shows: left out. Its
 * reactions and its pin stay, as the row does, and everyone sees them on the
 * message (only `pinnedMessages` leaves it out for non-admins).
 */
function normalize(m: MessageView): MessageView {
  return m.deleted ? { ...m, body: null, edits: [], attachments: [] } : m;
}

/**
 * A member's markers as far as events can tell them. A marker move is logged
 * only when it passes a message (a read marker: any message; a delivery
 * marker: a live one someone else sent), so that clients acknowledging every
 * event do not answer each other's receipts forever; a move past anything else
 * is silent. So the markers are compared as the last such message at or
 * before them (0: none), which is all a receipt or status depends on.
 */
function markersOf(
  messages: Pick<MessageState, 'seq' | 'senderId' | 'deleted'>[],
  userId: string,
  read: number,
  delivered: number,
): MemberView {
  const upTo = (marker: number, counts: (m: (typeof messages)[number]) => boolean) =>
    Math.max(0, ...messages.filter((m) => m.seq <= marker && counts(m)).map((m) => m.seq));
  return {
    userId,
    lastReadSeq: upTo(read, () => true),
    lastDeliveredSeq: upTo(delivered, (m) => m.senderId !== userId && !m.deleted),
  };
}

function viewOf(state: ChannelState, seesDeleted: boolean): ChannelView {
  const messages = [...state.messages.values()].sort((a, b) => a.seq - b.seq);
  // A message deleted for good took its reactions and pin along.
  expect(
    [...state.reactions.keys(), ...state.pins.keys()].filter((id) => !state.messages.has(id)),
    'reactions or pins of messages gone',
  ).toEqual([]);
  return {
    lastSeq: state.seqs.at(-1) ?? 0,
    archived: state.archived,
    settings: state.settings,
    members: [...state.members]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([userId, { read, delivered }]) => markersOf(messages, userId, read, delivered)),
    messages: messages.map((m) =>
      normalize({
        ...m,
        replyCount: messages.filter((r) => r.parentId === m.id).length,
        readCount: [...state.members].filter(([userId, marker]) => userId !== m.senderId && marker.read >= m.seq).length,
        // Each emoji in the order of its earliest reaction still there; its users earliest first.
        reactions: [...(state.reactions.get(m.id) ?? [])]
          .map(([emoji, r]) => ({ emoji, r, first: Math.min(...r.users.map((u) => u.seq)) }))
          .sort((a, b) => a.first - b.first)
          .map(({ emoji, r }) => ({ emoji, count: r.count, userIds: r.users.map((u) => u.id) })),
        pinnedBy: state.pins.get(m.id)?.by ?? null,
      }),
    ),
    pinnedMessages: [...state.pins]
      .filter(([id]) => seesDeleted || !state.messages.get(id)!.deleted)
      .sort(([, a], [, b]) => b.seq - a.seq)
      .map(([id]) => id),
    items: Object.fromEntries([...state.items].sort()),
  };
}

const SETTINGS_QUERY = graphql(`
  query ConvergenceChannelSettings($c: ID!) {
    channel(id: $c) {
      name
      topic
      description
      customFields
      visibility
      membersMayPin
      slowModeSeconds
    }
  }
`);

const FRESH = graphql(`
  query ConvergenceChannel($c: ID!) {
    channel(id: $c) {
      lastSeq
      archived
      name
      topic
      description
      customFields
      visibility
      membersMayPin
      slowModeSeconds
      members(first: 50) {
        edges {
          node {
            user {
              id
            }
            lastReadSeq
            lastDeliveredSeq
          }
        }
      }
      pinnedMessages(first: 50) {
        edges {
          node {
            id
          }
        }
      }
      messages {
        pageInfo {
          hasNextPage
        }
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
            reactions {
              emoji
              count
              users(first: 10) {
                id
              }
            }
            pinned
            pinnedBy {
              id
            }
            attachments {
              id
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
  expect(channel.messages.pageInfo.hasNextPage, 'every message on one page').toBe(false);
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
  const messages = channel.messages.edges.map(({ node: m }) => {
    expect(m.pinned, `Message.pinned and pinnedBy of ${m.id}`).toBe(m.pinnedBy !== null);
    return normalize({
      ...fromEvent(
        m,
        m.edits.edges.map((e) => ({ previousBody: e.node.previousBody, editorId: e.node.editor.id })),
      ),
      replyCount: m.replyCount,
      readCount: m.readCount,
      reactions: m.reactions.map((r) => ({ emoji: r.emoji, count: r.count, userIds: r.users.map((u) => u.id) })),
      pinnedBy: m.pinnedBy?.id ?? null,
    });
  });
  const { name, topic, description, customFields, visibility, membersMayPin, slowModeSeconds } = channel;
  return {
    lastSeq: channel.lastSeq,
    archived: channel.archived,
    settings: { name, topic, description, customFields, visibility, membersMayPin, slowModeSeconds },
    members: channel.members.edges
      .map(({ node: m }) => markersOf(messages, m.user.id, m.lastReadSeq, m.lastDeliveredSeq))
      .sort((a, b) => a.userId.localeCompare(b.userId)),
    messages,
    pinnedMessages: channel.pinnedMessages.edges.map((e) => e.node.id),
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
    // The reducer starts from the settings the channel was created with, so none may have changed yet.
    expect(live.items.filter((e) => e.__typename === 'ChannelUpdatedEvent')).toEqual([]);
    const settings: Settings = ok(await s.gql(SETTINGS_QUERY, { c: channelId }, observer.token)).channel;
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
    const seesDeleted = observer.role === 'OWNER' || observer.role === 'ADMIN';
    expect(viewOf(rebuild(live.items, settings), seesDeleted), 'live stream vs fresh query').toEqual(fresh);
    expect(viewOf(rebuild(replay.items, settings), seesDeleted), 'replay vs fresh query').toEqual(fresh);
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
const DELETE_MESSAGE = graphql(`
  mutation ConvergenceDeleteMessage($id: ID!, $h: Boolean) {
    deleteMessage(input: { id: $id, hard: $h }) {
      hard
    }
  }
`);
const remove = (token: string, id: string, hard = false) => gqlOk(token, DELETE_MESSAGE, { id, h: hard });
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

const ADD_REACTION = graphql(`
  mutation ConvergenceAddReaction($id: ID!, $e: String!) {
    addReaction(messageId: $id, emoji: $e) {
      id
    }
  }
`);
const PIN_MESSAGE = graphql(`
  mutation ConvergencePinMessage($id: ID!) {
    pinMessage(messageId: $id) {
      pinned
    }
  }
`);
const react = (token: string, id: string, emoji: string, added = true) =>
  added
    ? gqlOk(token, ADD_REACTION, { id, e: emoji })
    : gqlOk(
        token,
        graphql(`
          mutation ConvergenceRemoveReaction($id: ID!, $e: String!) {
            removeReaction(messageId: $id, emoji: $e) {
              id
            }
          }
        `),
        { id, e: emoji },
      );
const pin = (token: string, id: string, pinned = true) =>
  pinned
    ? gqlOk(token, PIN_MESSAGE, { id })
    : gqlOk(
        token,
        graphql(`
          mutation ConvergenceUnpinMessage($id: ID!) {
            unpinMessage(messageId: $id) {
              pinned
            }
          }
        `),
        { id },
      );
/**
 * Runs the operations at once. Each either succeeds or fails with one of
 * `codes` (what losing the race means for it); returns the error codes, null
 * for a success.
 */
async function race(codes: string[], ...operations: Promise<GqlResult<unknown>>[]): Promise<(string | null)[]> {
  const outcomes = (await Promise.all(operations)).map((r) => errorCode(r) ?? null);
  for (const code of outcomes) if (code !== null) expect(codes, 'how a race may be lost').toContain(code);
  return outcomes;
}
/** Marks the channel delivered up to `seq` (its last seq when absent). */
const markDelivered = async (token: string, channelId: string, seq?: number) =>
  gqlOk(
    token,
    graphql(`
      mutation ConvergenceMarkChannelDelivered($c: ID!, $seq: Int!) {
        markChannelDelivered(channelId: $c, seq: $seq) {
          lastDeliveredSeq
        }
      }
    `),
    { c: channelId, seq: seq ?? (await lastSeqOf(token, channelId)) },
  );
const markUnread = (token: string, channelId: string, seq: number) =>
  gqlOk(
    token,
    graphql(`
      mutation ConvergenceMarkChannelUnread($c: ID!, $seq: Int!) {
        markChannelUnread(channelId: $c, seq: $seq) {
          lastReadSeq
        }
      }
    `),
    { c: channelId, seq },
  );
const updateChannel = (token: string, input: UpdateChannelInput) =>
  gqlOk(
    token,
    graphql(`
      mutation ConvergenceUpdateChannel($input: UpdateChannelInput!) {
        updateChannel(input: $input) {
          id
        }
      }
    `),
    { input },
  );
/** Runs `change`, which must log nothing. */
async function unchanged(token: string, channelId: string, change: () => Promise<unknown>) {
  const before = await lastSeqOf(token, channelId);
  await change();
  expect(await lastSeqOf(token, channelId)).toBe(before);
}

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

      // Files: one taken off its message by its uploader, another deleted for good with its message.
      const [f1, f2, f3] = (await Promise.all([alice, alice, bob].map(upload))) as [string, string, string];
      const withFiles = await send(s, alice.token, channelId, 'two photos', { attachmentIds: [f1, f2] });
      ok(await s.gql(`mutation($id: ID!) { removeAttachment(id: $id) { removed } }`, { id: f1 }, alice.token));
      const purgedFiles = await send(s, bob.token, channelId, '', { attachmentIds: [f3] });
      await remove(owner.token, purgedFiles.id, true);
      await edit(alice.token, withFiles.id, 'one photo');

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

  it('in a group channel: reactions, pins, delivery and unread markers, settings, joining an open channel', async () => {
    const { owner, alice, carol, dave, agent } = people;
    const channelId = await createChannel(s, owner.token, { memberIds: [alice.id, carol.id, agent.id] });
    // Carol, a plain member, observes: pinnedMessages leaves out the deleted messages she may not see.
    await verify(carol, channelId, async () => {
      const plan = await send(s, owner.token, channelId, 'the plan');
      const agenda = await send(s, alice.token, channelId, 'the agenda');
      const reply = await send(s, carol.token, channelId, 'sounds good', { parentId: plan.id });
      const doomed = await send(s, alice.token, channelId, 'to purge');
      const retracted = await send(s, carol.token, channelId, 'to retract');

      // Several users at once on one emoji: each event's count is the count at its point in the log.
      await Promise.all([
        react(alice.token, plan.id, '👍'),
        react(carol.token, plan.id, '👍'),
        react(owner.token, plan.id, '👍'),
        react(alice.token, plan.id, '🎉'),
        react(carol.token, agenda.id, '❤️'),
        // The same add twice at once: one event.
        react(agent.token, agenda.id, '🚀'),
        react(agent.token, agenda.id, '🚀'),
      ]);
      // A reaction the user has (by its shortcode too), and a removal of one they have not: no event.
      await unchanged(alice.token, channelId, () => react(alice.token, plan.id, ':thumbsup:'));
      await unchanged(alice.token, channelId, () => react(alice.token, plan.id, '👍'));
      await unchanged(carol.token, channelId, () => react(carol.token, agenda.id, '🎉', false));
      // Alice takes hers back and adds it again: she is listed last now.
      await react(alice.token, plan.id, '👍', false);
      await react(alice.token, plan.id, '👍');
      // Carol too: 👍 now ranks by the earliest of its reactions still there, the owner's.
      await react(carol.token, plan.id, '👍', false);
      await react(carol.token, plan.id, '👍');
      await react(agent.token, agenda.id, '🚀', false); // the last one: the emoji is gone
      await Promise.all([react(alice.token, doomed.id, '😂'), react(carol.token, doomed.id, '😂'), react(carol.token, retracted.id, '👀')]);

      // Pins: the owner manages; a pin of a pinned message, and an unpin of one not pinned, log nothing.
      await pin(owner.token, plan.id);
      await Promise.all([pin(owner.token, doomed.id), pin(agent.token, retracted.id)]);
      await unchanged(owner.token, channelId, () => pin(owner.token, plan.id));
      await unchanged(owner.token, channelId, () => pin(owner.token, agenda.id, false));
      await pin(owner.token, plan.id, false);
      await pin(agent.token, plan.id); // pinned again, by someone else: now the newest pin

      // A pinned message with reactions deleted for good takes both along; one
      // deleted by its author keeps them (and stays pinned, out of Carol's list).
      await remove(owner.token, doomed.id, true);
      await remove(carol.token, retracted.id);
      const unpinnedAfterDelete = await send(s, alice.token, channelId, 'pinned, deleted, unpinned');
      await pin(owner.token, unpinnedAfterDelete.id);
      await remove(alice.token, unpinnedAfterDelete.id);
      await pin(owner.token, unpinnedAfterDelete.id, false); // a deleted message may be unpinned

      // Deleted, for good or not, while reactions and a pin race the delete: what
      // lands before it is logged before it; nothing lands after.
      const raced = await send(s, alice.token, channelId, 'raced, purged');
      const racedSoft = await send(s, carol.token, channelId, 'raced, retracted');
      const [purged, , , , retractedNow] = await race(
        ['NOT_FOUND', 'CONFLICT'],
        s.gql(DELETE_MESSAGE, { id: raced.id, h: true }, owner.token),
        s.gql(ADD_REACTION, { id: raced.id, e: '🔥' }, alice.token),
        s.gql(ADD_REACTION, { id: raced.id, e: '🔥' }, carol.token),
        s.gql(PIN_MESSAGE, { id: raced.id }, agent.token),
        s.gql(DELETE_MESSAGE, { id: racedSoft.id, h: false }, carol.token),
        s.gql(ADD_REACTION, { id: racedSoft.id, e: '🔥' }, alice.token),
        s.gql(PIN_MESSAGE, { id: racedSoft.id }, agent.token),
      );
      expect([purged, retractedNow], 'the deletes themselves').toEqual([null, null]);

      // Markers: delivery at once for two members, reading, and reading back.
      await Promise.all([markDelivered(alice.token, channelId), markDelivered(carol.token, channelId)]);
      await unchanged(alice.token, channelId, () => markDelivered(alice.token, channelId, 1)); // never back
      await markRead(alice.token, channelId);
      await markUnread(alice.token, channelId, agenda.seq); // back, before her own message
      await markUnread(carol.token, channelId, reply.seq + 1); // forward, as far as her reply
      // Past no message at all: the marker moves, silently.
      await unchanged(owner.token, channelId, () => markUnread(owner.token, channelId, plan.seq));
      await send(s, carol.token, channelId, 'carol, again');
      // Past only her own message: delivery moves silently.
      await unchanged(carol.token, channelId, () => markDelivered(carol.token, channelId));

      // Settings: several at once, none changed, a clearing null, an open channel someone joins.
      await updateChannel(owner.token, {
        channelId,
        name: `renamed-${channelId.slice(-6)}`,
        topic: 'Q3 launch',
        description: 'Where the launch is planned',
        customFields: { color: 'teal', rank: 2 },
      });
      await unchanged(owner.token, channelId, () =>
        updateChannel(owner.token, { channelId, topic: 'Q3 launch', customFields: { rank: 2, color: 'teal' } }),
      );
      await updateChannel(agent.token, { channelId, topic: null, visibility: 'PUBLIC', membersMayPin: true, slowModeSeconds: 30 });
      await gqlOk(
        dave.token,
        graphql(`
          mutation ConvergenceJoinChannel($c: ID!) {
            joinChannel(channelId: $c) {
              id
            }
          }
        `),
        { c: channelId },
      );
      // Members may pin now; and everything at once.
      await Promise.all([
        pin(alice.token, agenda.id),
        react(dave.token, plan.id, '👍'),
        react(dave.token, agenda.id, '❤️'),
        markDelivered(dave.token, channelId),
        updateChannel(owner.token, { channelId, description: null, customFields: null }),
        send(s, dave.token, channelId, 'hello all'),
      ]);
      await markRead(dave.token, channelId);

      // Archived, then reopened with unarchiveChannel; settings change again.
      await archive(owner.token, channelId, true);
      await gqlOk(
        owner.token,
        graphql(`
          mutation ConvergenceUnarchiveChannel($c: ID!) {
            unarchiveChannel(channelId: $c) {
              archived
            }
          }
        `),
        { c: channelId },
      );
      await updateChannel(owner.token, {
        channelId,
        visibility: 'PRIVATE',
        membersMayPin: false,
        slowModeSeconds: 0,
        topic: 'after the launch',
      });
      // The emoji's order is that of its earliest reaction still there: 🚀 before 👀 now.
      await react(owner.token, reply.id, '👀');
      await react(alice.token, reply.id, '🚀');
      await react(owner.token, reply.id, '👀', false);
      await react(owner.token, reply.id, '👀');
      await react(carol.token, reply.id, '✅');
      // Delivered past what they read, and nothing read since.
      await markDelivered(agent.token, channelId);
      await markDelivered(owner.token, channelId);
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
      await Promise.all([react(client.token, ask.id, '👍'), react(alice.token, ask.id, '👍'), pin(agent.token, ask.id)]);
      // Pinned, reacted to and deleted: the owner, an admin, still finds it among the pins.
      const note = await send(s, alice.token, channelId, 'note for the record');
      await Promise.all([pin(agent.token, note.id), react(client.token, note.id, '📌'), markDelivered(client.token, channelId)]);
      await remove(alice.token, note.id);
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
      // Files on the request itself: added, and one removed again (an AttachmentRemovedEvent without a message).
      const [rf1, rf2] = await Promise.all([client, client].map(upload));
      ok(
        await s.gql(
          `mutation($input: AddClientRequestAttachmentsInput!) { addClientRequestAttachments(input: $input) { id } }`,
          { input: { clientRequestId: first, attachmentIds: [rf1, rf2] } },
          client.token,
        ),
      );
      ok(await s.gql(`mutation($id: ID!) { removeAttachment(id: $id) { removed } }`, { id: rf1 }, client.token));
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

/** An unattached upload of `user`'s (a small PNG); its id. */
async function upload(user: TestUser): Promise<string> {
  return ok(await uploadFile(s.url, user.token, { name: 'photo.png', bytes: await png(16, 12) })).uploadFile.id;
}

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

/** Mute, hide and the notification level are the viewer's own settings, not channel history: they must log nothing. */
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
  await gqlOk(
    user.token,
    graphql(`
      mutation ConvergenceSetNotificationLevel($c: ID!) {
        setChannelNotificationLevel(channelId: $c, level: ALL) {
          notificationLevel
        }
      }
    `),
    { c: channelId },
  );
  expect(await lastSeqOf(user.token, channelId)).toBe(before);
}
