import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, send, SEND } from './helpers/fixtures.ts';
import { channelSnapshot, eventRows, openDb } from './helpers/messages.ts';
import { graphql } from './generated/index.ts';
import type { SendMessageInput } from './generated/graphql.ts';

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

const sendRaw = (token: string, input: SendMessageInput) => s.gql(SEND, { input }, token);

describe('idempotent sendMessage', () => {
  it('returns the original message for a retry with the same clientMessageId', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const key = randomUUID();
    const first = await send(s, org.owner.token, channelId, 'hello', { clientMessageId: key });
    expect(first.clientMessageId).toBe(key);
    // A retry wins nothing by changing the body: the key names the message.
    const retry = await send(s, org.owner.token, channelId, 'hello again', { clientMessageId: key });
    expect(retry).toEqual(first);
    const snap = await channelSnapshot(s, org.owner.token, channelId);
    expect(snap.messages.map((m) => m.id)).toEqual([first.id]);
    expect(snap.lastSeq).toBe(first.seq);
  });

  it('keeps one message and one seq when 20 retries race', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const start = (await channelSnapshot(s, org.owner.token, channelId)).lastSeq;
    const key = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => sendRaw(org.owner.token, { channelId, body: 'once', clientMessageId: key })),
    );
    const sent = results.map((r) => ok(r).sendMessage);
    expect(new Set(sent.map((m) => m.id)).size).toBe(1);
    expect(new Set(sent.map((m) => m.seq))).toEqual(new Set([start + 1]));

    const snap = await channelSnapshot(s, org.owner.token, channelId);
    expect(snap.messages.map((m) => m.id)).toEqual([sent[0]!.id]);
    // The losers' seq bumps rolled back with their inserts: no gap in the log.
    expect(snap.lastSeq).toBe(start + 1);
    const events = await eventRows(db, channelId);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.type === 'MESSAGE_ADDED')).toHaveLength(1);
    // The next send continues right after.
    expect((await send(s, org.owner.token, channelId, 'next')).seq).toBe(start + 2);
  });

  it('scopes the key to its sender: another user with the same key gets a separate message', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    const key = randomUUID();
    const [a, b] = await Promise.all([
      send(s, org.owner.token, channelId, 'from owner', { clientMessageId: key }),
      send(s, member.token, channelId, 'from member', { clientMessageId: key }),
    ]);
    expect(a.id).not.toBe(b.id);
    expect([a.body, b.body]).toEqual(['from owner', 'from member']);
    expect((await channelSnapshot(s, org.owner.token, channelId)).messages).toHaveLength(2);
  });

  it('refuses the same key in another channel with CONFLICT, leaving that channel untouched', async () => {
    const org = await registerOrg(s);
    const first = await createChannel(s, org.owner.token);
    const second = await createChannel(s, org.owner.token);
    const key = randomUUID();
    await send(s, org.owner.token, first, 'here', { clientMessageId: key });
    const before = await channelSnapshot(s, org.owner.token, second);
    const reused = await sendRaw(org.owner.token, { channelId: second, body: 'there', clientMessageId: key });
    expect(errorCode(reused)).toBe('CONFLICT');
    const after = await channelSnapshot(s, org.owner.token, second);
    expect(after).toEqual(before);
  });

  it('rejects an empty or oversized clientMessageId', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    for (const clientMessageId of ['', '   ', 'k'.repeat(101)]) {
      const result = await sendRaw(org.owner.token, { channelId, body: 'x', clientMessageId });
      expect(errorCode(result)).toBe('BAD_USER_INPUT');
      expect(result.errors![0]!.extensions?.field).toBe('clientMessageId');
    }
  });
});

describe('concurrent sends', () => {
  it('give 50 racing messages the seqs start+1..start+50, none missing or repeated, history in seq order', async () => {
    const org = await registerOrg(s);
    const users = [org.owner, await createUser(s, org, 'MEMBER'), await createUser(s, org, 'STAFF')];
    const channelId = await createChannel(s, org.owner.token, { memberIds: users.slice(1).map((u) => u.id) });
    const start = (await channelSnapshot(s, org.owner.token, channelId)).lastSeq;

    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => sendRaw(users[i % users.length]!.token, { channelId, body: `msg ${i}` })),
    );
    const sent = results.map((r) => ok(r).sendMessage);
    const seqs = sent.map((m) => m.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => start + 1 + i));

    const snap = await channelSnapshot(s, org.owner.token, channelId);
    expect(snap.lastSeq).toBe(start + 50);
    expect(snap.messages.map((m) => m.seq)).toEqual(seqs);
    // Each message sits at the seq its sender was told.
    const bySeq = new Map(sent.map((m) => [m.seq, m]));
    for (const m of snap.messages) expect(m).toEqual({ id: bySeq.get(m.seq)!.id, seq: m.seq, body: bySeq.get(m.seq)!.body });

    const events = await eventRows(db, channelId);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: start + 50 }, (_, i) => i + 1));
    expect(events.slice(start).every((e) => e.type === 'MESSAGE_ADDED' && e.payload.seq === e.seq)).toBe(true);
  });

  it('keep seqs gap-free when sends race edits and deletes', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    const seed = await Promise.all(Array.from({ length: 6 }, (_, i) => send(s, member.token, channelId, `seed ${i}`)));
    const edit = graphql(`
      mutation ConcurrencyEditMessage($input: EditMessageInput!) {
        editMessage(input: $input) {
          id
        }
      }
    `);
    const del = graphql(`
      mutation ConcurrencyDeleteMessage($input: DeleteMessageInput!) {
        deleteMessage(input: $input) {
          hard
        }
      }
    `);
    const ops = [
      ...Array.from({ length: 20 }, (_, i) => sendRaw(org.owner.token, { channelId, body: `race ${i}` })),
      ...seed.slice(0, 3).map((m) => s.gql(edit, { input: { id: m.id, body: `${m.body} edited` } }, member.token)),
      ...seed.slice(3, 5).map((m) => s.gql(del, { input: { id: m.id } }, member.token)),
      s.gql(del, { input: { id: seed[5]!.id, hard: true } }, org.owner.token),
    ];
    for (const result of await Promise.all(ops)) ok(result);

    const events = await eventRows(db, channelId);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const count = (type: string) => events.filter((e) => e.type === type).length;
    expect([count('MESSAGE_ADDED'), count('MESSAGE_EDITED'), count('MESSAGE_DELETED')]).toEqual([26, 3, 3]);
    expect((await channelSnapshot(s, org.owner.token, channelId)).lastSeq).toBe(events.length);
  });

  it('record one deletion when the same message is deleted five times at once', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const m = await send(s, org.owner.token, channelId, 'bye');
    const del = graphql(`
      mutation ConcurrencyDeleteMessageState($input: DeleteMessageInput!) {
        deleteMessage(input: $input) {
          message {
            id
            deleted
          }
        }
      }
    `);
    const results = await Promise.all(Array.from({ length: 5 }, () => s.gql(del, { input: { id: m.id } }, org.owner.token)));
    for (const r of results) expect(ok(r).deleteMessage.message).toEqual({ id: m.id, deleted: true });

    const events = await eventRows(db, channelId);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.type === 'MESSAGE_DELETED')).toHaveLength(1);
    expect((await channelSnapshot(s, org.owner.token, channelId)).lastSeq).toBe(events.length);
  });

  it('keep a consistent edit history when edits race', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const m = await send(s, org.owner.token, channelId, 'v0');
    const bodies = ['v1', 'v2', 'v3', 'v4', 'v5'];
    const edit = graphql(`
      mutation ConcurrencyEditMessage($input: EditMessageInput!) {
        editMessage(input: $input) {
          id
        }
      }
    `);
    for (const r of await Promise.all(bodies.map((body) => s.gql(edit, { input: { id: m.id, body } }, org.owner.token)))) ok(r);

    const data = ok(
      await s.gql(
        graphql(`
          query ConcurrencyMessage($id: ID!) {
            message(id: $id) {
              body
              edits(first: 10) {
                edges {
                  node {
                    previousBody
                  }
                }
              }
            }
          }
        `),
        { id: m.id },
        org.owner.token,
      ),
    ).message;
    const previous = data.edits.edges.map((e) => e.node.previousBody);
    // Each edit saw the body the one before it wrote: v0 first, every body exactly once.
    expect(previous[0]).toBe('v0');
    expect([...previous, data.body].sort()).toEqual(['v0', ...bodies]);
    const edited = (await eventRows(db, channelId)).filter((e) => e.type === 'MESSAGE_EDITED');
    expect(edited.map((e) => e.payload.body)).toEqual([...previous.slice(1), data.body]);
  });
});
