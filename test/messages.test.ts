import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type GqlResult, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, send, SEND, type TestOrg, type TestUser } from './helpers/fixtures.ts';
import { channelSnapshot, eventRows, openDb, rawId } from './helpers/messages.ts';
import { graphql } from './generated/index.ts';
import type { MessagesChannelQuery, MessagesChannelQueryVariables, SendMessageInput } from './generated/graphql.ts';

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

/** An organization with a plain member and a group channel both belong to. */
async function room(): Promise<{ org: TestOrg; member: TestUser; channelId: string }> {
  const org = await registerOrg(s);
  const member = await createUser(s, org, 'MEMBER');
  const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
  return { org, member, channelId };
}

const trySend = (token: string, input: SendMessageInput) => s.gql(SEND, { input }, token);

/** The first error is BAD_USER_INPUT and names `field`, in extensions or in its message. */
function expectBadInput(result: GqlResult<unknown>, field: string) {
  expect(errorCode(result), JSON.stringify(result.errors)).toBe('BAD_USER_INPUT');
  const error = result.errors![0]!;
  expect(error.extensions?.field === field || error.message.includes(field), error.message).toBe(true);
}

const MESSAGE = graphql(`
  query MessagesMessage($id: ID!) {
    message(id: $id) {
      id
      body
      deleted
      edited
      editedAt
      edits(first: 10) {
        edges {
          node {
            previousBody
            editor {
              username
            }
          }
        }
      }
    }
  }
`);
const EDIT = graphql(`
  mutation MessagesEditMessage($input: EditMessageInput!) {
    editMessage(input: $input) {
      id
      seq
      body
      edited
      editedAt
    }
  }
`);
const DELETE = graphql(`
  mutation MessagesDeleteMessage($input: DeleteMessageInput!) {
    deleteMessage(input: $input) {
      messageId
      hard
      message {
        id
        deleted
        body
      }
    }
  }
`);

async function readMessage(token: string, id: string) {
  return s.gql(MESSAGE, { id }, token);
}

describe('sendMessage input', () => {
  it('trims the body and rejects empty or whitespace-only bodies naming the field', async () => {
    const { org, channelId } = await room();
    const m = await send(s, org.owner.token, channelId, ' \n\t hello world \n ');
    expect(m.body).toBe('hello world');
    expectBadInput(await trySend(org.owner.token, { channelId, body: '' }), 'body');
    expectBadInput(await trySend(org.owner.token, { channelId, body: ' \n\t  ' }), 'body');
    // Rejected sends leave no trace: history holds the one good message, lastSeq counts only it.
    const snap = await channelSnapshot(s, org.owner.token, channelId);
    expect(snap.messages.map((x) => x.body)).toEqual(['hello world']);
    expect(snap.lastSeq).toBe(m.seq);
  });

  it('accepts 5,000 characters after trimming and rejects 5,001', async () => {
    const { org, channelId } = await room();
    const max = 'x'.repeat(5000);
    const m = await send(s, org.owner.token, channelId, `  ${max}  `);
    expect(m.body).toBe(max);
    expectBadInput(await trySend(org.owner.token, { channelId, body: `${max}y` }), 'body');
    // Characters, not UTF-16 units: 5,000 emoji fit, 5,001 do not.
    const emoji = '\u{1F600}'.repeat(5000);
    expect((await send(s, org.owner.token, channelId, emoji)).body).toBe(emoji);
    expectBadInput(await trySend(org.owner.token, { channelId, body: `${emoji}!` }), 'body');
  });

  it('refuses input PostgreSQL cannot store as BAD_USER_INPUT, not as a server error', async () => {
    const { org, channelId } = await room();
    expectBadInput(await trySend(org.owner.token, { channelId, body: 'a\u0000b' }), 'body');
    expectBadInput(await trySend(org.owner.token, { channelId, body: 'ok', clientMessageId: 'key\u0000' }), 'clientMessageId');
    expectBadInput(await trySend(org.owner.token, { channelId, body: 'ok', customFields: { note: 'x\u0000' } }), 'customFields');
    expectBadInput(await trySend(org.owner.token, { channelId, body: 'ok', customFields: { ['k\u0000']: 1 } }), 'customFields');
    expectBadInput(await trySend(org.owner.token, { channelId, body: 'ok', customFields: { blob: 'x'.repeat(20_000) } }), 'customFields');
    const m = await send(s, org.owner.token, channelId, 'fine');
    expectBadInput(await s.gql(EDIT, { input: { id: m.id, body: 'bad\u0000' } }, org.owner.token), 'body');
    expect((await channelSnapshot(s, org.owner.token, channelId)).messages.map((x) => x.body)).toEqual(['fine']);
  });

  it('requires parentId to be a message of the same channel; a reply to a reply joins the root thread', async () => {
    const { org, member, channelId } = await room();
    const otherChannel = await createChannel(s, org.owner.token);
    const elsewhere = await send(s, org.owner.token, otherChannel, 'in another channel');
    expectBadInput(await trySend(org.owner.token, { channelId, body: 'reply', parentId: elsewhere.id }), 'parentId');

    // Another organization's message is no valid parent either.
    const stranger = await registerOrg(s);
    const foreign = await send(s, stranger.owner.token, await createChannel(s, stranger.owner.token), 'foreign');
    expect(['BAD_USER_INPUT', 'NOT_FOUND']).toContain(
      errorCode(await trySend(org.owner.token, { channelId, body: 'x', parentId: foreign.id })),
    );

    const root = await send(s, org.owner.token, channelId, 'root');
    const reply = await send(s, member.token, channelId, 'first reply', { parentId: root.id });
    const nested = await send(s, org.owner.token, channelId, 'reply to the reply', { parentId: reply.id });
    const data = ok(
      await s.gql(
        graphql(`
          query MessagesRootAndNested($root: ID!, $nested: ID!) {
            root: message(id: $root) {
              replyCount
              replies(first: 10) {
                edges {
                  node {
                    id
                    body
                    parent {
                      id
                    }
                  }
                }
              }
            }
            nested: message(id: $nested) {
              parent {
                id
              }
              replyCount
            }
          }
        `),
        { root: root.id, nested: nested.id },
        member.token,
      ),
    );
    expect(data.nested.parent!.id).toBe(root.id);
    expect(data.root.replyCount).toBe(2);
    expect(data.root.replies.edges.map((e) => e.node.body)).toEqual(['first reply', 'reply to the reply']);
    expect(data.root.replies.edges.every((e) => e.node.parent!.id === root.id)).toBe(true);
  });

  it('round-trips customFields as JSON', async () => {
    const { org, member, channelId } = await room();
    const customFields = { priority: 2, tags: ['a', 'b'], nested: { ok: true, note: null }, text: 'ünïcode ✓' };
    const sent = ok(
      await s.gql(
        graphql(`
          mutation MessagesSendMessage($input: SendMessageInput!) {
            sendMessage(input: $input) {
              id
              customFields
            }
          }
        `),
        { input: { channelId, body: 'with fields', customFields } },
        org.owner.token,
      ),
    );
    expect(sent.sendMessage.customFields).toEqual(customFields);
    const read = ok(
      await s.gql(
        graphql(`
          query MessagesCustomFields($id: ID!) {
            message(id: $id) {
              customFields
            }
          }
        `),
        { id: sent.sendMessage.id },
        member.token,
      ),
    );
    expect(read.message.customFields).toEqual(customFields);
    // Not an object: rejected as input, not a server error.
    const bad = await trySend(org.owner.token, { channelId, body: 'x', customFields: [1, 2] });
    expect(errorCode(bad)).toBe('BAD_USER_INPUT');
  });

  it('answers sendMessage and editMessage with relations and counts the client selects', async () => {
    const { org, member, channelId } = await room();
    const root = await send(s, member.token, channelId, 'root');
    graphql(`
      fragment MessagesRich on Message {
        id
        seq
        body
        replyCount
        sender {
          username
        }
        parent {
          id
        }
        channel {
          id
        }
        edits(first: 5) {
          edges {
            node {
              previousBody
            }
          }
        }
      }
    `);
    const reply = ok(
      await s.gql(
        graphql(`
          mutation MessagesSendRich($input: SendMessageInput!) {
            sendMessage(input: $input) {
              ...MessagesRich
            }
          }
        `),
        { input: { channelId, body: 'reply', parentId: root.id } },
        org.owner.token,
      ),
    ).sendMessage;
    expect(reply).toMatchObject({
      body: 'reply',
      replyCount: 0,
      sender: { username: 'owner' },
      parent: { id: root.id },
      channel: { id: channelId },
    });
    const edited = ok(
      await s.gql(
        graphql(`
          mutation MessagesEditRich($input: EditMessageInput!) {
            editMessage(input: $input) {
              ...MessagesRich
            }
          }
        `),
        { input: { id: root.id, body: 'root v2' } },
        member.token,
      ),
    ).editMessage;
    expect(edited).toMatchObject({ body: 'root v2', replyCount: 1, parent: null, edits: { edges: [{ node: { previousBody: 'root' } }] } });
  });

  it('takes the body limit from configuration', async () => {
    const small = await startServer({ limits: { messageBodyMax: 10, pageSizeMax: 100 } });
    try {
      const org = await registerOrg(small);
      const channelId = await createChannel(small, org.owner.token);
      const m = await send(small, org.owner.token, channelId, ' 0123456789 ');
      expect(m.body).toBe('0123456789');
      const tooLong = await small.gql(SEND, { input: { channelId, body: '01234567890' } }, org.owner.token);
      expect(errorCode(tooLong)).toBe('BAD_USER_INPUT');
      expect(tooLong.errors![0]!.extensions?.field).toBe('body');
      expect(tooLong.errors![0]!.message).toContain('10');
    } finally {
      await small.stop();
    }
  });
});

describe('Channel.messages', () => {
  const PAGE = graphql(`
    query MessagesChannel($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
      channel(id: $id) {
        messages(first: $first, after: $after, last: $last, before: $before) {
          edges {
            cursor
            node {
              seq
              body
            }
          }
          pageInfo {
            hasNextPage
            hasPreviousPage
            startCursor
            endCursor
          }
        }
      }
    }
  `);
  type Page = MessagesChannelQuery['channel']['messages'];
  const page = async (token: string, id: string, args: Omit<MessagesChannelQueryVariables, 'id'>) =>
    ok(await s.gql(PAGE, { id, ...args }, token)).channel.messages;

  let org: TestOrg;
  let channelId: string;
  let seqs: number[];
  beforeAll(async () => {
    ({ org, channelId } = await room());
    seqs = [];
    for (let i = 1; i <= 25; i++) seqs.push((await send(s, org.owner.token, channelId, `m${i}`)).seq);
  });

  it('walks forward with first/after in pages of 10', async () => {
    const seen: number[] = [];
    const infos: [boolean, boolean][] = [];
    let after: string | null = null;
    for (;;) {
      const p: Page = await page(org.owner.token, channelId, { first: 10, after });
      seen.push(...p.edges.map((e) => e.node.seq));
      infos.push([p.pageInfo.hasPreviousPage, p.pageInfo.hasNextPage]);
      expect(p.pageInfo.endCursor).toBe(p.edges.at(-1)!.cursor);
      if (!p.pageInfo.hasNextPage) break;
      after = p.pageInfo.endCursor;
    }
    expect(seen).toEqual(seqs);
    expect(infos).toEqual([
      [false, true],
      [true, true],
      [true, false],
    ]);
  });

  it('walks backward with last/before, each page in seq order', async () => {
    const pages: number[][] = [];
    const infos: [boolean, boolean][] = [];
    let before: string | null = null;
    for (;;) {
      const p: Page = await page(org.owner.token, channelId, { last: 10, before });
      pages.push(p.edges.map((e) => e.node.seq));
      infos.push([p.pageInfo.hasPreviousPage, p.pageInfo.hasNextPage]);
      expect(p.pageInfo.startCursor).toBe(p.edges[0]!.cursor);
      if (!p.pageInfo.hasPreviousPage) break;
      before = p.pageInfo.startCursor;
    }
    expect(pages).toEqual([seqs.slice(15), seqs.slice(5, 15), seqs.slice(0, 5)]);
    expect(infos).toEqual([
      [true, false],
      [true, true],
      [false, true],
    ]);
  });

  it('pages exactly at the boundary without an empty extra page', async () => {
    const first = await page(org.owner.token, channelId, { first: 25 });
    expect(first.edges).toHaveLength(25);
    expect(first.pageInfo.hasNextPage).toBe(false);
    const rest = await page(org.owner.token, channelId, { first: 10, after: first.pageInfo.endCursor });
    expect(rest.edges).toEqual([]);
    expect(rest.pageInfo.hasNextPage).toBe(false);
  });

  it('caps the page size at 100 with a clear error', async () => {
    expect((await page(org.owner.token, channelId, { first: 100 })).edges).toHaveLength(25);
    for (const args of [{ first: 101 }, { last: 101 }, { first: -1 }]) {
      const result = await s.gql(PAGE, { id: channelId, ...args }, org.owner.token);
      expect(errorCode(result), JSON.stringify(result.errors)).toBe('BAD_USER_INPUT');
    }
    const garbage = await s.gql(PAGE, { id: channelId, first: 5, after: 'not-a-cursor' }, org.owner.token);
    expect(errorCode(garbage)).toBe('BAD_USER_INPUT');
    const nested = await s.gql(
      graphql(`
        query MessagesTooManyReplies($id: ID!) {
          channel(id: $id) {
            messages(first: 1) {
              edges {
                node {
                  replies(first: 101) {
                    edges {
                      cursor
                    }
                  }
                }
              }
            }
          }
        }
      `),
      { id: channelId },
      org.owner.token,
    );
    expect(errorCode(nested)).toBe('BAD_USER_INPUT');
  });

  it('takes the page cap from configuration', async () => {
    const small = await startServer({ limits: { messageBodyMax: 5000, pageSizeMax: 20 } });
    try {
      const o = await registerOrg(small);
      const id = await createChannel(small, o.owner.token);
      await send(small, o.owner.token, id, 'one');
      const q = graphql(`
        query MessagesFirstN($id: ID!, $n: Int) {
          channel(id: $id) {
            messages(first: $n) {
              edges {
                node {
                  seq
                }
              }
            }
          }
        }
      `);
      expect(ok(await small.gql(q, { id, n: 20 }, o.owner.token)).channel.messages.edges).toHaveLength(1);
      expect(errorCode(await small.gql(q, { id, n: 21 }, o.owner.token))).toBe('BAD_USER_INPUT');
    } finally {
      await small.stop();
    }
  });

  it('costs the same number of queries for 5 and 50 messages with sender, replies and parent', async () => {
    const { org: o, member, channelId: id } = await room();
    const roots: string[] = [];
    for (let i = 0; i < 50; i++) {
      // Every fifth message replies to the previous root, so parent and replyCount have data.
      const parentId = i % 5 === 4 ? roots.at(-1) : undefined;
      const m = await send(s, i % 2 ? member.token : o.owner.token, id, `n${i}`, parentId ? { parentId } : {});
      if (!parentId) roots.push(m.id);
    }
    const q = graphql(`
      query MessagesFirstNWithRelations($id: ID!, $n: Int) {
        channel(id: $id) {
          messages(first: $n) {
            edges {
              node {
                body
                sender {
                  username
                }
                replyCount
                parent {
                  id
                }
              }
            }
          }
        }
      }
    `);
    const cost = async (n: number) => {
      const before = s.app.queryCount();
      const data = ok(await s.gql(q, { id, n }, o.owner.token));
      const used = s.app.queryCount() - before;
      expect(data.channel.messages.edges).toHaveLength(n);
      return { used, data };
    };
    const five = await cost(5);
    const fifty = await cost(50);
    expect(fifty.used).toBe(five.used);
    const nodes = fifty.data.channel.messages.edges.map((e) => e.node);
    expect(nodes.filter((n) => n.parent).length).toBe(10);
    expect(nodes.filter((n) => n.replyCount === 1).length).toBe(10);
    expect(new Set(nodes.map((n) => n.sender.username))).toEqual(new Set(['owner', member.username]));
  });
});

describe('editMessage', () => {
  it('lets the author edit, keeping the history in order', async () => {
    const { org, member, channelId } = await room();
    const m = await send(s, member.token, channelId, 'v1');
    const unedited = ok(await readMessage(member.token, m.id)).message;
    expect(unedited).toMatchObject({ edited: false, editedAt: null, edits: { edges: [] } });

    const e1 = ok(await s.gql(EDIT, { input: { id: m.id, body: '  v2  ' } }, member.token)).editMessage;
    expect(e1).toMatchObject({ id: m.id, seq: m.seq, body: 'v2', edited: true });
    expect(e1.editedAt).toEqual(expect.any(String));
    ok(await s.gql(EDIT, { input: { id: m.id, body: 'v3' } }, member.token));

    const read = ok(await readMessage(org.owner.token, m.id)).message;
    expect(read.body).toBe('v3');
    expect(read.edited).toBe(true);
    expect(Date.parse(read.editedAt!)).toBeGreaterThanOrEqual(Date.parse(e1.editedAt!));
    expect(read.edits.edges.map((e) => e.node.previousBody)).toEqual(['v1', 'v2']);
    expect(read.edits.edges.every((e) => e.node.editor.username === member.username)).toBe(true);
  });

  it('is for the author only', async () => {
    const { org, member, channelId } = await room();
    const m = await send(s, member.token, channelId, 'mine');
    const other = await createUser(s, org, 'MEMBER');
    ok(
      await s.gql(
        graphql(`
          mutation MessagesAddChannelMembers($c: ID!, $u: [ID!]!) {
            addChannelMembers(channelId: $c, userIds: $u) {
              id
            }
          }
        `),
        { c: channelId, u: [other.id] },
        org.owner.token,
      ),
    );
    expect(errorCode(await s.gql(EDIT, { input: { id: m.id, body: 'theirs' } }, other.token))).toBe('FORBIDDEN');
    // Not even the organization owner rewrites someone else's words.
    expect(errorCode(await s.gql(EDIT, { input: { id: m.id, body: 'owner' } }, org.owner.token))).toBe('FORBIDDEN');
    expect(ok(await readMessage(member.token, m.id)).message).toMatchObject({ body: 'mine', edited: false });
  });

  it('rejects an empty body and a deleted message', async () => {
    const { member, channelId } = await room();
    const m = await send(s, member.token, channelId, 'text');
    expectBadInput(await s.gql(EDIT, { input: { id: m.id, body: '   ' } }, member.token), 'body');
    ok(await s.gql(DELETE, { input: { id: m.id } }, member.token));
    expect(errorCode(await s.gql(EDIT, { input: { id: m.id, body: 'again' } }, member.token))).toBe('CONFLICT');
  });

  it('gives NOT_FOUND for a message of another organization or a channel the viewer is not in', async () => {
    const { org, channelId } = await room();
    const m = await send(s, org.owner.token, channelId, 'private');
    const outsider = await createUser(s, org, 'MEMBER');
    const stranger = await registerOrg(s);
    for (const token of [outsider.token, stranger.owner.token]) {
      expect(errorCode(await s.gql(EDIT, { input: { id: m.id, body: 'x' } }, token))).toBe('NOT_FOUND');
      expect(errorCode(await s.gql(DELETE, { input: { id: m.id } }, token))).toBe('NOT_FOUND');
      expect(errorCode(await readMessage(token, m.id))).toBe('NOT_FOUND');
    }
  });
});

describe('deleteMessage', () => {
  it('soft delete by the author hides body and history from non-admins only', async () => {
    const { org, member, channelId } = await room();
    const admin = await createUser(s, org, 'ADMIN');
    ok(
      await s.gql(
        graphql(`
          mutation MessagesAddChannelMembers($c: ID!, $u: [ID!]!) {
            addChannelMembers(channelId: $c, userIds: $u) {
              id
            }
          }
        `),
        { c: channelId, u: [admin.id] },
        org.owner.token,
      ),
    );
    const m = await send(s, member.token, channelId, 'draft');
    ok(await s.gql(EDIT, { input: { id: m.id, body: 'secret' } }, member.token));

    const deleted = ok(await s.gql(DELETE, { input: { id: m.id } }, member.token)).deleteMessage;
    expect(deleted).toMatchObject({ messageId: m.id, hard: false, message: { id: m.id, deleted: true, body: null } });

    for (const viewer of [member, org.owner, admin]) {
      const read = ok(await readMessage(viewer.token, m.id)).message;
      const privileged = viewer.role === 'OWNER' || viewer.role === 'ADMIN';
      expect(read.deleted).toBe(true);
      expect(read.body).toBe(privileged ? 'secret' : null);
      expect(read.edits.edges.map((e) => e.node.previousBody)).toEqual(privileged ? ['draft'] : []);
    }
    const history = await channelSnapshot(s, member.token, channelId);
    expect(history.messages.find((x) => x.id === m.id)?.body).toBeNull();
    expect((await channelSnapshot(s, org.owner.token, channelId)).messages.find((x) => x.id === m.id)?.body).toBe('secret');

    // The log is replayed to every member, so its snapshots must not keep the hidden body either.
    const events = (await eventRows(db, channelId)).filter((e) => e.payload.id === rawId(m.id));
    expect(events.map((e) => e.type)).toEqual(['MESSAGE_ADDED', 'MESSAGE_EDITED', 'MESSAGE_DELETED']);
    expect(JSON.stringify(events)).not.toMatch(/draft|secret/);
  });

  it('lets a channel owner who is a plain organization member moderate their channel', async () => {
    const org = await registerOrg(s);
    const [moderator, poster] = [await createUser(s, org, 'MEMBER'), await createUser(s, org, 'MEMBER')];
    const channelId = await createChannel(s, moderator.token, { memberIds: [poster.id] });
    const m = await send(s, poster.token, channelId, 'off topic');
    expect(errorCode(await s.gql(DELETE, { input: { id: m.id, hard: true } }, moderator.token))).toBe('FORBIDDEN');
    expect(ok(await s.gql(DELETE, { input: { id: m.id } }, moderator.token)).deleteMessage.message).toMatchObject({
      deleted: true,
      body: null,
    });
  });

  it('lets staff and admins soft-delete others\u2019 messages, but not plain members', async () => {
    const { org, member, channelId } = await room();
    const other = await createUser(s, org, 'MEMBER');
    const staff = await createUser(s, org, 'STAFF');
    const admin = await createUser(s, org, 'ADMIN');
    ok(
      await s.gql(
        graphql(`
          mutation MessagesAddChannelMembers($c: ID!, $u: [ID!]!) {
            addChannelMembers(channelId: $c, userIds: $u) {
              id
            }
          }
        `),
        { c: channelId, u: [other.id, staff.id, admin.id] },
        org.owner.token,
      ),
    );
    const a = await send(s, member.token, channelId, 'a');
    const b = await send(s, member.token, channelId, 'b');
    expect(errorCode(await s.gql(DELETE, { input: { id: a.id } }, other.token))).toBe('FORBIDDEN');
    expect(ok(await readMessage(member.token, a.id)).message.deleted).toBe(false);
    expect(ok(await s.gql(DELETE, { input: { id: a.id } }, staff.token)).deleteMessage.message!.deleted).toBe(true);
    expect(ok(await s.gql(DELETE, { input: { id: b.id } }, admin.token)).deleteMessage.message!.deleted).toBe(true);
  });

  it('allows hard delete only to organization owners and admins', async () => {
    const { org, member, channelId } = await room();
    const staff = await createUser(s, org, 'STAFF');
    ok(
      await s.gql(
        graphql(`
          mutation MessagesAddChannelMembers($c: ID!, $u: [ID!]!) {
            addChannelMembers(channelId: $c, userIds: $u) {
              id
            }
          }
        `),
        { c: channelId, u: [staff.id] },
        org.owner.token,
      ),
    );
    const m = await send(s, member.token, channelId, 'keep me');
    for (const viewer of [member, staff]) {
      expect(errorCode(await s.gql(DELETE, { input: { id: m.id, hard: true } }, viewer.token))).toBe('FORBIDDEN');
    }
    expect(ok(await readMessage(member.token, m.id)).message).toMatchObject({ body: 'keep me', deleted: false });
  });

  it('hard delete removes the row and every copy of the body, leaving a tombstone in the log', async () => {
    const { org, member, channelId } = await room();
    const root = await send(s, member.token, channelId, 'root');
    const m = await send(s, member.token, channelId, 'password: hunter2', { parentId: root.id, customFields: { card: '4111' } });
    ok(await s.gql(EDIT, { input: { id: m.id, body: 'password: hunter3' } }, member.token));
    const after = await send(s, member.token, channelId, 'after');

    const result = ok(await s.gql(DELETE, { input: { id: m.id, hard: true } }, org.owner.token)).deleteMessage;
    expect(result).toEqual({ messageId: m.id, hard: true, message: null });

    expect(errorCode(await readMessage(org.owner.token, m.id))).toBe('NOT_FOUND');
    const history = await channelSnapshot(s, org.owner.token, channelId);
    expect(history.messages.map((x) => x.id)).toEqual([root.id, after.id]);
    const thread = ok(
      await s.gql(
        graphql(`
          query MessagesReplyCount($id: ID!) {
            message(id: $id) {
              replyCount
            }
          }
        `),
        { id: root.id },
        org.owner.token,
      ),
    );
    expect(thread.message.replyCount).toBe(0);

    const events = await eventRows(db, channelId);
    const ofMessage = events.filter((e) => e.payload.id === rawId(m.id));
    expect(ofMessage.map((e) => e.type)).toEqual(['MESSAGE_ADDED', 'MESSAGE_EDITED', 'MESSAGE_DELETED']);
    const tombstone = ofMessage.at(-1)!;
    expect(tombstone.seq).toBe(history.lastSeq);
    expect(tombstone.payload).toMatchObject({ id: rawId(m.id), hard: true });
    const leaked = JSON.stringify(events);
    expect(leaked).not.toContain('hunter');
    expect(leaked).not.toContain('4111');
    const edits = await db.query(`SELECT 1 FROM "MessageEdit" WHERE "messageId" = $1`, [rawId(m.id)]);
    expect(edits.rowCount).toBe(0);
  });
});

describe('channel event log', () => {
  it('appends exactly one event with the next seq per change, and nothing for rejected or no-op changes', async () => {
    const { org, member, channelId } = await room();
    const a = await send(s, org.owner.token, channelId, 'a');
    const b = await send(s, member.token, channelId, 'b');
    ok(await s.gql(EDIT, { input: { id: a.id, body: 'a2' } }, org.owner.token));
    // No-ops and failures must not consume a seq.
    ok(await s.gql(EDIT, { input: { id: a.id, body: ' a2 ' } }, org.owner.token));
    expect(errorCode(await s.gql(EDIT, { input: { id: b.id, body: 'hijack' } }, org.owner.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(DELETE, { input: { id: a.id } }, member.token))).toBe('FORBIDDEN');
    expect(errorCode(await trySend(member.token, { channelId, body: '  ' }))).toBe('BAD_USER_INPUT');
    ok(await s.gql(DELETE, { input: { id: b.id } }, member.token));
    ok(await s.gql(DELETE, { input: { id: b.id } }, member.token));
    const c = await send(s, member.token, channelId, 'c', { parentId: a.id });
    ok(await s.gql(DELETE, { input: { id: c.id, hard: true } }, org.owner.token));

    const events = await eventRows(db, channelId);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.map((e) => e.type)).toEqual([
      'MEMBER_ADDED',
      'MESSAGE_ADDED',
      'MESSAGE_ADDED',
      'MESSAGE_EDITED',
      'MESSAGE_DELETED',
      'MESSAGE_ADDED',
      'MESSAGE_DELETED',
    ]);
    expect([a.seq, b.seq, c.seq]).toEqual([2, 3, 6]);
    expect(events[3]!.payload).toMatchObject({ id: rawId(a.id), body: 'a2', seq: a.seq });
    const snap = await channelSnapshot(s, org.owner.token, channelId);
    expect(snap.lastSeq).toBe(events.length);
    expect(snap.messages.map((m) => m.seq)).toEqual([a.seq, b.seq]);
  });
});

describe('markChannelRead', () => {
  const UNREAD = graphql(`
    query MessagesUnread($id: ID!) {
      channel(id: $id) {
        lastSeq
        unreadCount
        membership {
          lastReadSeq
        }
      }
    }
  `);
  const MARK = graphql(`
    mutation MessagesMarkChannelRead($c: ID!, $seq: Int!) {
      markChannelRead(channelId: $c, seq: $seq) {
        lastReadSeq
      }
    }
  `);

  it('clears the other member\u2019s unread count and never moves backwards', async () => {
    const { org, member, channelId } = await room();
    for (const body of ['one', 'two', 'three']) await send(s, org.owner.token, channelId, body);
    const before = ok(await s.gql(UNREAD, { id: channelId }, member.token)).channel;
    expect(before.unreadCount).toBe(3);
    expect(ok(await s.gql(UNREAD, { id: channelId }, org.owner.token)).channel.unreadCount).toBe(0);

    const marked = ok(await s.gql(MARK, { c: channelId, seq: before.lastSeq }, member.token)).markChannelRead;
    expect(marked.lastReadSeq).toBe(before.lastSeq);
    expect(ok(await s.gql(UNREAD, { id: channelId }, member.token)).channel.unreadCount).toBe(0);

    expect(ok(await s.gql(MARK, { c: channelId, seq: 1 }, member.token)).markChannelRead.lastReadSeq).toBe(before.lastSeq);
    await send(s, org.owner.token, channelId, 'four');
    const after = ok(await s.gql(UNREAD, { id: channelId }, member.token)).channel;
    expect(after.unreadCount).toBe(1);
    expect(after.membership!.lastReadSeq).toBe(before.lastSeq);
  });
});
