import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startServer, uid, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, send, type TestOrg, type TestUser } from './helpers/fixtures.ts';
import * as files from './helpers/files.ts';
import { openDb, rawId } from './helpers/messages.ts';
import { collect } from './helpers/subscription.ts';
import { download, uploadFile } from './helpers/upload.ts';
import { liveSocket, wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

// Erasing a user's personal data (GDPR art. 17, issue 14 §5): the profile is
// anonymized, sign-in ends for good, and the messages they sent are deleted
// (hard deletes with tombstones in the log) or kept, per the organization's
// erasureMessagePolicy; replays stay gap-free and never show the old name.

const ERASE = graphql(`
  mutation EraseUser($userId: ID!) {
    eraseUser(userId: $userId) {
      id
      username
      displayName
      email
      deactivated
      erased
    }
  }
`);
const REACTIVATE = graphql(`
  mutation EraseReactivate($userId: ID!) {
    reactivateUser(userId: $userId) {
      id
    }
  }
`);
const CREATE_USER = graphql(`
  mutation EraseCreateUser($input: CreateUserInput!) {
    createUser(input: $input) {
      id
    }
  }
`);
const LOGIN = graphql(`
  mutation EraseLogin($o: String!, $u: String!, $p: String!) {
    login(organization: $o, username: $u, password: $p) {
      token
      refreshToken
    }
  }
`);
const REFRESH = graphql(`
  mutation EraseRefresh($t: String!) {
    refreshSession(refreshToken: $t) {
      token
    }
  }
`);
const USER = graphql(`
  query EraseUserView($id: ID!) {
    user(id: $id) {
      username
      displayName
      erased
    }
  }
`);
const VIEWER = graphql(`
  query EraseViewer {
    viewer {
      id
    }
  }
`);
const SETTINGS = graphql(`
  mutation EraseSettings($input: UpdateOrganizationSettingsInput!) {
    updateOrganizationSettings(input: $input) {
      id
      erasureMessagePolicy
    }
  }
`);
const REACT = graphql(`
  mutation EraseReact($m: ID!, $e: String!) {
    addReaction(messageId: $m, emoji: $e) {
      id
    }
  }
`);
const EDIT = graphql(`
  mutation EraseEdit($input: EditMessageInput!) {
    editMessage(input: $input) {
      id
    }
  }
`);
const OPEN_TICKET = graphql(`
  mutation EraseOpenTicket($input: OpenSupportTicketInput!) {
    openSupportTicket(input: $input) {
      id
      channel {
        id
      }
    }
  }
`);
const ASSIGN = graphql(`
  mutation EraseAssign($input: AssignSupportTicketInput!) {
    assignSupportTicket(input: $input) {
      id
    }
  }
`);
const SET_STATUS = graphql(`
  mutation EraseSetStatus($input: SetSupportTicketStatusInput!) {
    setSupportTicketStatus(input: $input) {
      id
    }
  }
`);
const MESSAGES = graphql(`
  query EraseMessages($id: ID!) {
    channel(id: $id) {
      lastSeq
      messages(first: 100) {
        edges {
          node {
            id
            body
            sender {
              id
              username
              displayName
            }
            reactions {
              emoji
              count
            }
            mentions {
              user {
                id
                displayName
              }
            }
          }
        }
      }
    }
  }
`);
const NOTIFICATIONS = graphql(`
  query EraseNotifications {
    notifications(first: 50) {
      edges {
        node {
          messageId
          data
        }
      }
    }
  }
`);
const TRAIL = graphql(`
  query EraseTrail($filter: AuditEventFilter) {
    auditEvents(filter: $filter, first: 100) {
      edges {
        node {
          action
          actorId
          targetId
          data
        }
      }
    }
  }
`);
const EVENTS = graphql(`
  subscription EraseEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      seq
      __typename
      ... on MessageAddedEvent {
        message {
          id
          body
          sender {
            username
            displayName
          }
        }
      }
      ... on MessageEditedEvent {
        message {
          id
          body
        }
      }
      ... on MessageDeletedEvent {
        messageId
        hard
      }
      ... on SystemEvent {
        text
      }
    }
  }
`);

type Event = { seq: number; __typename: string; messageId?: string; hard?: boolean; text?: string };

interface Person extends TestUser {
  displayName: string;
  password: string;
  refreshToken: string;
}

let s: TestServer;
let db: pg.Pool;
beforeAll(async () => {
  s = await startServer();
  db = openDb(s);
});
afterAll(async () => {
  await db?.end();
  await s?.stop();
});

/** A member with a name, an email and a password of their own: the personal data erasure removes. */
async function person(org: TestOrg, role: 'MEMBER' | 'STAFF' = 'MEMBER'): Promise<Person> {
  const username = `ada-${uid()}`;
  const displayName = `Ada Lovelace ${uid()}`;
  const password = `pw-${uid()}-secret`;
  const created = ok(
    await s.gql(CREATE_USER, { input: { username, displayName, email: `${username}@example.com`, role, password } }, org.owner.token),
  );
  const login = ok(await s.gql(LOGIN, { o: org.slug, u: username, p: password })).login;
  return {
    id: created.createUser.id,
    username,
    displayName,
    password,
    token: login.token,
    refreshToken: login.refreshToken,
    role,
  };
}

/** The channel's whole log replayed from after=0, as a reconnecting client gets it. */
async function replay(token: string, channelId: string): Promise<Event[]> {
  const { lastSeq } = ok(await s.gql(MESSAGES, { id: channelId }, token)).channel;
  const client = wsClient(s.url, token, { keepOpen: true });
  try {
    return (await collect(client, EVENTS, { c: channelId, after: 0 }, (d) => d.channelEvents as Event).waitFor(lastSeq)).slice();
  } finally {
    await client.dispose();
  }
}

const messagesOf = async (token: string, channelId: string) =>
  ok(await s.gql(MESSAGES, { id: channelId }, token)).channel.messages.edges.map((e) => e.node);

const contiguous = (events: Event[]) => events.map((e) => e.seq).every((seq, i) => seq === i + 1);

describe('eraseUser under DELETE (the default)', () => {
  it('anonymizes the profile, locks the user out, removes their messages for everyone with tombstones, and leaves no old name or body in replays', async () => {
    const org = await registerOrg(s);
    const admin = await createUser(s, org, 'ADMIN');
    const bob = await createUser(s, org);
    const ada = await person(org);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [bob.id, ada.id] });

    const upload = ok(await uploadFile(s.url, ada.token, { name: 'photo.png', bytes: await files.png(40, 30) })).uploadFile;
    const secret = `ada secret ${uid()}`;
    const first = await send(s, ada.token, channelId, `${secret} for @${bob.username}`, { attachmentIds: [upload.id] });
    ok(await s.gql(EDIT, { input: { id: first.id, body: `${secret} edited for @${bob.username}` } }, ada.token));
    const bobBody = `bob answers @${ada.username}`;
    const bobs = await send(s, bob.token, channelId, bobBody);
    const reply = await send(s, ada.token, channelId, `${secret} reply`, { parentId: bobs.id });
    ok(await s.gql(REACT, { m: bobs.id, e: '👍' }, ada.token));
    ok(await s.gql(REACT, { m: first.id, e: '🎉' }, bob.token));
    const ticket = ok(
      await s.gql(
        OPEN_TICKET,
        { input: { subject: 'Printer', category: 'OTHER', priority: 'LOW', message: `${secret} ticket` } },
        ada.token,
      ),
    ).openSupportTicket;
    const ticketChannel = ticket.channel!.id;
    // The owner takes the ticket, which puts them in its conversation.
    ok(await s.gql(ASSIGN, { input: { id: ticket.id } }, org.owner.token));
    // A failed sign-in under her name records the address it came from.
    expect(errorCode(await s.gql(LOGIN, { o: org.slug, u: ada.username, p: 'wrong password' }))).toBe('UNAUTHENTICATED');
    const fileUrl = upload.url;
    expect((await download(s.url, fileUrl)).status).toBe(200);
    expect(
      ok(await s.gql(NOTIFICATIONS, {}, bob.token)).notifications.edges.some(
        (e) => (e.node.data as { actorName?: string }).actorName === ada.displayName,
      ),
    ).toBe(true);

    // Bob watches the channel live; Ada has a socket open.
    const { lastSeq: before } = ok(await s.gql(MESSAGES, { id: channelId }, bob.token)).channel;
    const bobClient = wsClient(s.url, bob.token, { keepOpen: true });
    const live = collect(bobClient, EVENTS, { c: channelId, after: before }, (d) => d.channelEvents as Event);
    const adaSocket = liveSocket(s.url, { authToken: ada.token });
    expect(await adaSocket.acked).toBe(true);

    try {
      const erased = ok(await s.gql(ERASE, { userId: ada.id }, admin.token)).eraseUser;
      expect(erased).toMatchObject({ id: ada.id, email: null, deactivated: true, erased: true });
      expect(erased.username).toMatch(/^erased-[0-9a-f]{32}$/);
      expect(erased.displayName).toMatch(/^Former user [0-9a-f]{6}$/);

      // Live: the deletions reach Bob's subscription as hard deletes; Ada's socket closes as for a deactivation.
      const deletions = (await live.waitFor(2)).filter((e) => e.__typename === 'MessageDeletedEvent');
      expect(deletions.map((e) => [e.messageId, e.hard]).sort()).toEqual(
        [
          [first.id, true],
          [reply.id, true],
        ].sort(),
      );
      expect((await adaSocket.closed).code).toBe(4403);
    } finally {
      live.unsubscribe();
      await bobClient.dispose();
    }

    // The trail: one entry by the admin with counts, nothing of her name; addresses recorded about her are gone.
    const trail = ok(await s.gql(TRAIL, { filter: { targetId: ada.id } }, org.owner.token)).auditEvents.edges.map((e) => e.node);
    const erasure = trail.filter((e) => e.action === 'user.erase');
    expect(erasure).toEqual([{ action: 'user.erase', actorId: admin.id, targetId: ada.id, data: { policy: 'DELETE', messages: 3 } }]);
    // Each message has its own entry: who removed it and when, as for a hard delete.
    const removal = ok(await s.gql(TRAIL, { filter: { targetId: reply.id } }, org.owner.token)).auditEvents.edges.map((e) => e.node);
    expect(removal).toContainEqual(
      expect.objectContaining({ action: 'message.hardDelete', actorId: admin.id, data: expect.objectContaining({ reason: 'erasure' }) }),
    );
    expect(trail.some((e) => e.action === 'session.signInFailed')).toBe(true);
    expect(trail.some((e) => e.action === 'session.signIn')).toBe(true);
    // Newest first: what was recorded before the erasure (the sign-in attempts below are new records of whoever tries).
    const recordedBefore = trail.slice(trail.findIndex((e) => e.action === 'user.erase'));
    expect(recordedBefore.filter((e) => e.action.startsWith('session.'))).not.toEqual([]);
    for (const entry of recordedBefore) expect(entry.data ?? {}).not.toHaveProperty('ip');
    const sessions = await db.query(
      `SELECT count(*)::int AS n FROM "Session" WHERE "userId" = $1 AND (ip IS NOT NULL OR "userAgent" IS NOT NULL)`,
      [rawId(ada.id)],
    );
    expect(sessions.rows[0].n).toBe(0);
    const everything = await db.query(`SELECT data::text AS d FROM "AuditLog" WHERE data::text LIKE $1 OR data::text LIKE $2`, [
      `%${ada.displayName}%`,
      `%${ada.username}"%`,
    ]);
    expect(everything.rows).toEqual([]);

    // Others see the anonymized profile; the old credentials, tokens and refresh token are dead.
    const seen = ok(await s.gql(USER, { id: ada.id }, bob.token)).user;
    expect(seen).toMatchObject({ erased: true, displayName: expect.stringMatching(/^Former user /) });
    expect(errorCode(await s.gql(LOGIN, { o: org.slug, u: ada.username, p: ada.password }))).toBe('UNAUTHENTICATED');
    expect(errorCode(await s.gql(LOGIN, { o: org.slug, u: seen.username, p: ada.password }))).toBe('UNAUTHENTICATED');
    expect(errorCode(await s.gql(VIEWER, {}, ada.token))).toBe('UNAUTHENTICATED');
    expect(errorCode(await s.gql(REFRESH, { t: ada.refreshToken }))).toBe('UNAUTHENTICATED');

    // Her messages are gone for everyone; Bob's message, his reaction and hers on his message stay.
    const history = await messagesOf(bob.token, channelId);
    expect(history.map((m) => m.id)).toEqual([bobs.id]);
    expect(history[0]!.body).toBe(bobBody);
    expect(history[0]!.reactions).toEqual([{ emoji: '👍', count: 1 }]);
    // Bob's text is his: it still says @old-name, while the mention resolves to the anonymized profile.
    expect(history[0]!.mentions.map((m) => m.user?.displayName)).toEqual([seen.displayName]);
    const ownerView = await messagesOf(org.owner.token, channelId);
    expect(ownerView.map((m) => m.id)).toEqual([bobs.id]);
    const left = await db.query(`SELECT count(*)::int AS n FROM "Message" WHERE "senderId" = $1`, [rawId(ada.id)]);
    expect(left.rows[0].n).toBe(0);
    const edits = await db.query(`SELECT count(*)::int AS n FROM "MessageEdit" WHERE "editorId" = $1`, [rawId(ada.id)]);
    expect(edits.rows[0].n).toBe(0);
    // Her file is no longer served.
    expect((await download(s.url, fileUrl)).status).not.toBe(200);

    // Replays: every seq once, and nothing of hers but the tombstones.
    for (const [token, channel] of [
      [bob.token, channelId],
      [org.owner.token, ticketChannel],
    ] as const) {
      const events = await replay(token, channel);
      expect(contiguous(events)).toBe(true);
      const text = JSON.stringify(events).replaceAll(bobBody, '');
      expect(text).not.toContain(secret);
      expect(text).not.toContain(ada.username);
      expect(text).not.toContain(ada.displayName);
    }
    const ticketEvents = await replay(org.owner.token, ticketChannel);
    expect(ticketEvents.find((e) => e.__typename === 'SystemEvent')?.text).toContain(seen.displayName);
    // The log rows themselves (what any future reader of the log gets) hold neither, Bob's own text aside.
    const rows = await db.query(
      `SELECT seq FROM "ChannelEvent" WHERE "channelId" = ANY($1::uuid[]) AND payload->>'id' IS DISTINCT FROM $5
        AND (payload::text LIKE $2 OR payload::text LIKE $3 OR payload::text LIKE $4)`,
      [[rawId(channelId), rawId(ticketChannel)], `%${secret}%`, `%${ada.displayName}%`, `%${ada.username}%`, rawId(bobs.id)],
    );
    expect(rows.rows).toEqual([]);

    // Bob's notification about her message lost its quote and her name.
    const notes = ok(await s.gql(NOTIFICATIONS, {}, bob.token)).notifications.edges.map((e) => e.node);
    const aboutFirst = notes.filter((n) => n.messageId === first.id);
    expect(aboutFirst).toHaveLength(1);
    expect(aboutFirst[0]!.data).toMatchObject({ excerpt: null, actorName: seen.displayName });
    expect(JSON.stringify(notes)).not.toContain(ada.displayName);
    // Notifications addressed to her are gone.
    const hers = await db.query(`SELECT count(*)::int AS n FROM "Notification" WHERE "userId" = $1`, [rawId(ada.id)]);
    expect(hers.rows[0].n).toBe(0);

    // Never again: reactivation is refused, and a second erasure changes nothing.
    const refused = await s.gql(REACTIVATE, { userId: ada.id }, admin.token);
    expect(errorCode(refused)).toBe('CONFLICT');
    const { lastSeq: settled } = ok(await s.gql(MESSAGES, { id: channelId }, bob.token)).channel;
    const again = ok(await s.gql(ERASE, { userId: ada.id }, org.owner.token)).eraseUser;
    expect(again).toEqual(ok(await s.gql(ERASE, { userId: ada.id }, admin.token)).eraseUser);
    expect(again.username).toBe(seen.username);
    const entries = ok(await s.gql(TRAIL, { filter: { action: 'user.erase' } }, org.owner.token)).auditEvents.edges;
    expect(entries).toHaveLength(1);
    expect(ok(await s.gql(MESSAGES, { id: channelId }, bob.token)).channel.lastSeq).toBe(settled);
  });

  it('removes many messages in batches, each with its tombstone, and the log stays gap-free', async () => {
    const org = await registerOrg(s);
    const ada = await person(org);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [ada.id] });
    const channel2 = await createChannel(s, org.owner.token, { memberIds: [ada.id] });
    for (let i = 0; i < 230; i++) {
      await send(s, ada.token, i % 3 === 0 ? channel2 : channelId, `bulk ${i}`);
      if (i % 50 === 0) await send(s, org.owner.token, channelId, `owner ${i}`);
    }
    ok(await s.gql(ERASE, { userId: ada.id }, org.owner.token));
    const left = await db.query(`SELECT count(*)::int AS n FROM "Message" WHERE "senderId" = $1`, [rawId(ada.id)]);
    expect(left.rows[0].n).toBe(0);
    expect((await messagesOf(org.owner.token, channelId)).map((m) => m.body)).toEqual([0, 50, 100, 150, 200].map((i) => `owner ${i}`));
    const tombstones = await db.query(
      `SELECT count(*)::int AS n FROM "ChannelEvent" WHERE "channelId" = ANY($1::uuid[]) AND type = 'MESSAGE_DELETED' AND (payload->>'hard')::boolean`,
      [[rawId(channelId), rawId(channel2)]],
    );
    expect(tombstones.rows[0].n).toBe(230);
    for (const channel of [channelId, channel2]) {
      const seqs = await db.query<{ seq: number }>(`SELECT seq FROM "ChannelEvent" WHERE "channelId" = $1 ORDER BY seq`, [rawId(channel)]);
      expect(seqs.rows.map((r) => r.seq)).toEqual(seqs.rows.map((_, i) => i + 1));
      const bodies = await db.query(
        `SELECT count(*)::int AS n FROM "ChannelEvent" WHERE "channelId" = $1 AND payload::text LIKE '%bulk%'`,
        [rawId(channel)],
      );
      expect(bodies.rows[0].n).toBe(0);
    }
  });
});

describe('an interrupted erasure', () => {
  it('is finished by erasing the user again: the remaining messages go, nothing else changes', async () => {
    const org = await registerOrg(s);
    const ada = await person(org);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [ada.id] });
    for (let i = 0; i < 3; i++) await send(s, ada.token, channelId, `unfinished ${i}`);
    // The process dies after the profile's transaction, before the messages' batches.
    const erasure = s.app.services.erasure as unknown as { removeMessages: (...args: unknown[]) => Promise<number> };
    const removeMessages = erasure.removeMessages;
    erasure.removeMessages = () => Promise.reject(new Error('crash'));
    try {
      expect(errorCode(await s.gql(ERASE, { userId: ada.id }, org.owner.token))).toBe('INTERNAL_SERVER_ERROR');
    } finally {
      erasure.removeMessages = removeMessages;
    }
    expect(ok(await s.gql(USER, { id: ada.id }, org.owner.token)).user.erased).toBe(true);
    expect(await messagesOf(org.owner.token, channelId)).toHaveLength(3);

    const again = ok(await s.gql(ERASE, { userId: ada.id }, org.owner.token)).eraseUser;
    expect(again.erased).toBe(true);
    expect(await messagesOf(org.owner.token, channelId)).toEqual([]);
    const events = await replay(org.owner.token, channelId);
    expect(contiguous(events)).toBe(true);
    expect(events.filter((e) => e.__typename === 'MessageDeletedEvent')).toHaveLength(3);
    expect(ok(await s.gql(TRAIL, { filter: { action: 'user.erase' } }, org.owner.token)).auditEvents.edges).toHaveLength(1);
  });
});

describe('eraseUser: the name kept elsewhere', () => {
  it('rewrites an erased agent’s name in ticket events, the notifications they caused and audit data', async () => {
    const org = await registerOrg(s);
    const bob = await createUser(s, org);
    const grace = await person(org, 'STAFF');
    const ticket = ok(
      await s.gql(OPEN_TICKET, { input: { subject: 'VPN', category: 'TECHNICAL', priority: 'HIGH', message: 'it is down' } }, bob.token),
    ).openSupportTicket;
    ok(await s.gql(ASSIGN, { input: { id: ticket.id, assigneeId: grace.id } }, org.owner.token));
    ok(await s.gql(SET_STATUS, { input: { id: ticket.id, status: 'PENDING_USER' } }, grace.token));
    const named = async () => {
      const events = await replay(bob.token, ticket.channel!.id);
      return events.filter((e) => e.__typename === 'SystemEvent').map((e) => e.text!);
    };
    expect((await named()).filter((t) => t.includes(grace.displayName))).toHaveLength(2);
    const notes = async () => JSON.stringify(ok(await s.gql(NOTIFICATIONS, {}, bob.token)).notifications);
    expect(await notes()).toContain(grace.displayName);

    const erased = ok(await s.gql(ERASE, { userId: grace.id }, org.owner.token)).eraseUser;
    const texts = await named();
    expect(texts.filter((t) => t.includes(erased.displayName))).toHaveLength(2);
    expect(JSON.stringify(texts)).not.toContain(grace.displayName);
    expect(await notes()).not.toContain(grace.displayName);
    expect(await notes()).toContain(erased.displayName);
    const assigned = ok(await s.gql(TRAIL, { filter: { targetId: ticket.id } }, org.owner.token)).auditEvents.edges.map((e) => e.node);
    expect(assigned.find((e) => e.action === 'SupportTicket.ASSIGNED')?.data).toMatchObject({
      assigneeId: rawId(grace.id),
      assigneeName: erased.displayName,
    });
    const anywhere = await db.query(`SELECT 1 FROM "AuditLog" WHERE data::text LIKE $1`, [`%${grace.displayName}%`]);
    expect(anywhere.rows).toEqual([]);
  });
});

describe('eraseUser under KEEP', () => {
  it('keeps the bodies under the anonymized name; the setting is the admins’ and audited', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const admin = await createUser(s, org, 'ADMIN');
    expect(errorCode(await s.gql(SETTINGS, { input: { erasureMessagePolicy: 'KEEP' } }, member.token))).toBe('FORBIDDEN');
    expect(ok(await s.gql(SETTINGS, { input: {} }, admin.token)).updateOrganizationSettings.erasureMessagePolicy).toBe('DELETE');
    expect(
      ok(await s.gql(SETTINGS, { input: { erasureMessagePolicy: 'KEEP' } }, admin.token)).updateOrganizationSettings.erasureMessagePolicy,
    ).toBe('KEEP');
    const changes = ok(await s.gql(TRAIL, { filter: { action: 'organization.setErasureMessagePolicy' } }, org.owner.token)).auditEvents
      .edges;
    expect(changes.map((e) => e.node)).toEqual([expect.objectContaining({ actorId: admin.id, data: { from: 'DELETE', to: 'KEEP' } })]);

    const ada = await person(org);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id, ada.id] });
    const kept = await send(s, ada.token, channelId, 'a decision we keep');
    const unattached = ok(await uploadFile(s.url, ada.token, { name: 'draft.png', bytes: await files.png(20, 20) })).uploadFile;
    const { lastSeq } = ok(await s.gql(MESSAGES, { id: channelId }, member.token)).channel;

    const erased = ok(await s.gql(ERASE, { userId: ada.id }, org.owner.token)).eraseUser;
    const history = await messagesOf(member.token, channelId);
    expect(history.map((m) => [m.id, m.body, m.sender.displayName, m.sender.username])).toEqual([
      [kept.id, 'a decision we keep', erased.displayName, erased.username],
    ]);
    // Nothing was appended: the messages did not change, only whose name they show.
    const events = await replay(member.token, channelId);
    expect(events).toHaveLength(lastSeq);
    expect(contiguous(events)).toBe(true);
    const text = JSON.stringify(events);
    expect(text).toContain('a decision we keep');
    expect(text).not.toContain(ada.displayName);
    expect(text).not.toContain(ada.username);
    // An upload she never attached is nobody's record: it goes.
    expect((await download(s.url, unattached.url)).status).not.toBe(200);
    const trail = ok(await s.gql(TRAIL, { filter: { action: 'user.erase' } }, org.owner.token)).auditEvents.edges;
    expect(trail.map((e) => e.node.data)).toEqual([{ policy: 'KEEP', messages: 1 }]);
  });
});

describe('who may erase', () => {
  let org: TestOrg;
  let admin: TestUser;
  let member: TestUser;
  beforeAll(async () => {
    org = await registerOrg(s);
    admin = await createUser(s, org, 'ADMIN');
    member = await createUser(s, org);
  });

  it('refuses members, oneself and (for admins) owners; another organization’s user is NOT_FOUND', async () => {
    const target = await createUser(s, org);
    expect(errorCode(await s.gql(ERASE, { userId: target.id }, member.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(ERASE, { userId: admin.id }, admin.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(ERASE, { userId: org.owner.id }, org.owner.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(ERASE, { userId: org.owner.id }, admin.token))).toBe('FORBIDDEN');
    const other = await registerOrg(s);
    expect(errorCode(await s.gql(ERASE, { userId: target.id }, other.owner.token))).toBe('NOT_FOUND');
    // Nothing changed for any of them.
    for (const user of [target, admin, org.owner]) {
      expect(ok(await s.gql(USER, { id: user.id }, org.owner.token)).user.erased).toBe(false);
    }
    expect(ok(await s.gql(VIEWER, {}, target.token)).viewer.id).toBe(target.id);
  });
});

describe('eraseUser and the user’s exports', () => {
  it('expires a finished export at once (its link stops working) and never produces a pending one', async () => {
    const org = await registerOrg(s);
    const ada = await person(org);
    const channel = await createChannel(s, org.owner.token, { memberIds: [ada.id] });
    await send(s, ada.token, channel, 'exported before the erasure');
    const exportOf = (id: string) =>
      s.gql<{ export: { status: string; downloadUrl: string | null } }>(
        `query($id: ID!) { export(id: $id) { status downloadUrl } }`,
        { id },
        ada.token,
      );
    const requested = ok(
      await s.gql<{ exportChannel: { id: string } }>(
        `mutation($c: ID!) { exportChannel(channelId: $c, format: JSON) { id } }`,
        { c: channel },
        ada.token,
      ),
    ).exportChannel;
    expect(await eventually(async () => ok(await exportOf(requested.id)).export.status === 'READY', 15_000)).toBe(true);
    const url = ok(await exportOf(requested.id)).export.downloadUrl!;
    expect((await fetch(new URL(url, s.url))).status).toBe(200);
    // A second export, likely still pending when the erasure comes: it is then never produced.
    const pending = ok(
      await s.gql<{ exportChannel: { id: string } }>(
        `mutation($c: ID!) { exportChannel(channelId: $c, format: HTML) { id } }`,
        { c: channel },
        ada.token,
      ),
    ).exportChannel;

    ok(await s.gql(ERASE, { userId: ada.id }, org.owner.token));
    expect((await fetch(new URL(url, s.url))).status).toBe(404);
    const rows = await db.query<{ id: string; status: string; expired: boolean }>(
      `SELECT id, status, "expiresAt" <= now() AS expired FROM "Export" WHERE "requesterId" = $1 ORDER BY id`,
      [rawId(ada.id)],
    );
    const byId = new Map(rows.rows.map((r) => [r.id, r]));
    expect(byId.get(rawId(requested.id))).toMatchObject({ status: 'READY', expired: true });
    expect(['FAILED', 'READY']).toContain(byId.get(rawId(pending.id))!.status);
    if (byId.get(rawId(pending.id))!.status === 'READY') expect(byId.get(rawId(pending.id))!.expired).toBe(true);
  });
});
