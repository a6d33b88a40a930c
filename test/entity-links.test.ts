import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, uid, type TestServer } from './helpers/app.ts';
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
} from './helpers/fixtures.ts';
import { collect, untilLive } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { LinkedEntityInput } from './generated/graphql.ts';

/**
 * Entity links (issue 11 §2): entity types, organization API keys and the
 * integration operations they allow, and `@type#id` in a body resolved for
 * each reader (Message.links, linkedEntity, linkedMessages). MessageLink rows
 * are written by sendMessage and editMessage; what they say is resolved here.
 */

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const CREATE_KEY = graphql(`
  mutation EntityLinksCreateApiKey($name: String!) {
    createApiKey(name: $name) {
      secret
      apiKey {
        id
        name
        prefix
        revoked
        lastUsedAt
      }
    }
  }
`);
const LIST_KEYS = graphql(`
  query EntityLinksApiKeys {
    apiKeys(first: 20) {
      edges {
        node {
          id
          name
          prefix
          revoked
          revokedAt
          lastUsedAt
        }
      }
    }
  }
`);
const REVOKE_KEY = graphql(`
  mutation EntityLinksRevokeApiKey($id: ID!) {
    revokeApiKey(id: $id) {
      id
      revoked
      revokedAt
    }
  }
`);
const CREATE_TYPE = graphql(`
  mutation EntityLinksCreateType($input: CreateEntityTypeInput!) {
    createEntityType(input: $input) {
      id
      key
      displayName
      urlTemplate
    }
  }
`);
const UPDATE_TYPE = graphql(`
  mutation EntityLinksUpdateType($input: UpdateEntityTypeInput!) {
    updateEntityType(input: $input) {
      id
      key
      displayName
      urlTemplate
    }
  }
`);
const DELETE_TYPE = graphql(`
  mutation EntityLinksDeleteType($id: ID!) {
    deleteEntityType(id: $id)
  }
`);
const TYPES = graphql(`
  query EntityLinksTypes {
    entityTypes {
      key
      displayName
    }
  }
`);
const UPSERT = graphql(`
  mutation EntityLinksUpsert($entities: [LinkedEntityInput!]!) {
    upsertLinkedEntities(entities: $entities) {
      count
      changed
    }
  }
`);
const DELETE = graphql(`
  mutation EntityLinksDelete($refs: [LinkedEntityRefInput!]!) {
    deleteLinkedEntities(refs: $refs)
  }
`);
const LINKS = graphql(`
  query EntityLinksMessage($id: ID!) {
    message(id: $id) {
      id
      links {
        type
        id
        typeName
        label
        url
        nodeId
        start
        end
      }
    }
  }
`);
const PAGE = graphql(`
  query EntityLinksPage($c: ID!) {
    channel(id: $c) {
      messages(first: 50) {
        edges {
          node {
            id
            links {
              id
              label
              start
            }
          }
        }
      }
    }
  }
`);
const LINKED_MESSAGES = graphql(`
  query EntityLinksLinkedMessages($type: String!, $id: String!, $channelId: ID, $projectId: ID, $first: Int, $after: String) {
    linkedMessages(type: $type, id: $id, channelId: $channelId, projectId: $projectId, first: $first, after: $after) {
      edges {
        node {
          id
          body
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);
const LINKED_ENTITY = graphql(`
  query EntityLinksLinkedEntity($type: String!, $id: String!, $channelId: ID) {
    linkedEntity(type: $type, id: $id, channelId: $channelId) {
      type
      id
      label
      url
      nodeId
    }
  }
`);
const EDIT = graphql(`
  mutation EntityLinksEdit($id: ID!, $body: String!) {
    editMessage(input: { id: $id, body: $body }) {
      id
    }
  }
`);
const DELETE_MESSAGE = graphql(`
  mutation EntityLinksDeleteMessage($id: ID!) {
    deleteMessage(input: { id: $id }) {
      hard
    }
  }
`);
const TICKET = graphql(`
  mutation EntityLinksOpenTicket($subject: String!) {
    openSupportTicket(input: { subject: $subject, category: TECHNICAL, priority: HIGH, message: "It broke" }) {
      id
      number
    }
  }
`);
const REQUEST = graphql(`
  mutation EntityLinksFileRequest($projectId: ID!, $title: String!) {
    createClientRequest(input: { projectId: $projectId, title: $title, description: "d", type: MATERIAL }) {
      id
      number
    }
  }
`);
const LIVE = graphql(`
  subscription EntityLinksLive($c: ID!) {
    channelEvents(channelId: $c) {
      __typename
      ... on MessageAddedEvent {
        message {
          body
          links {
            id
            label
            start
            end
          }
        }
      }
    }
  }
`);

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function newKey(org: TestOrg): Promise<string> {
  return ok(await s.gql(CREATE_KEY, { name: `key-${uid()}` }, org.owner.token)).createApiKey.secret;
}

async function newType(org: TestOrg, key: string, displayName = 'Task', urlTemplate: string | null = 'https://erp.example.com/tasks/{id}') {
  return ok(await s.gql(CREATE_TYPE, { input: { key, displayName, urlTemplate } }, org.owner.token)).createEntityType;
}

async function upsert(key: string, entities: LinkedEntityInput[]) {
  return ok(await s.gql(UPSERT, { entities }, key)).upsertLinkedEntities;
}

async function linksOf(token: string, messageId: string) {
  return ok(await s.gql(LINKS, { id: messageId }, token)).message.links;
}

/** Each link as `id label` at `start`, for a compact comparison. */
const brief = (links: { id: string; label: string; start: number }[]) => links.map((l) => `${l.start}:${l.id}=${l.label}`);

describe('API keys', () => {
  it('are created by admins only, shown once, stored as a hash, and listed without the secret', async () => {
    const org = await registerOrg(s);
    const [member, staff] = await Promise.all([createUser(s, org, 'MEMBER'), createUser(s, org, 'STAFF')]);
    for (const user of [member, staff]) {
      expect(errorCode(await s.gql(CREATE_KEY, { name: 'mine' }, user.token))).toBe('FORBIDDEN');
      expect(errorCode(await s.gql(LIST_KEYS, {}, user.token))).toBe('FORBIDDEN');
    }
    expect(errorCode(await s.gql(CREATE_KEY, { name: '  ' }, org.owner.token))).toBe('BAD_USER_INPUT');

    const created = ok(await s.gql(CREATE_KEY, { name: 'ERP backend' }, org.owner.token)).createApiKey;
    expect(created.secret).toMatch(/^parley_[A-Za-z0-9_-]{43}$/);
    expect(created.apiKey).toMatchObject({ name: 'ERP backend', prefix: created.secret.slice(0, 13), revoked: false, lastUsedAt: null });

    const listed = ok(await s.gql(LIST_KEYS, {}, org.owner.token));
    expect(listed.apiKeys.edges.map((e) => e.node.id)).toEqual([created.apiKey.id]);
    expect(JSON.stringify(listed)).not.toContain(created.secret);

    // The database holds the hash, and the secret nowhere.
    const rows = await s.app.services.prisma.apiKey.findMany({ where: { name: 'ERP backend', prefix: created.apiKey.prefix } });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.hash).toBe(sha256(created.secret));
    expect(JSON.stringify(rows)).not.toContain(created.secret.slice(13));
  });

  it('authorize integration operations only; a user token may not call them; a revoked key is refused', async () => {
    const org = await registerOrg(s);
    await newType(org, 'task');
    const key = await newKey(org);
    const entity = { type: 'task', externalId: '1', label: 'Task #1' };

    // A key is no user: user operations are FORBIDDEN with it, and an integration operation with a user token.
    const asKey = await s.gql(`{ viewer { id } }`, {}, key);
    expect(errorCode(asKey)).toBe('FORBIDDEN');
    expect(asKey.errors![0]!.message).toMatch(/integration operations only/);
    expect(errorCode(await s.gql(CREATE_KEY, { name: 'k' }, key))).toBe('FORBIDDEN');
    const asUser = await s.gql(UPSERT, { entities: [entity] }, org.owner.token);
    expect(errorCode(asUser)).toBe('FORBIDDEN');
    expect(asUser.errors![0]!.message).toMatch(/API key/);
    // Unknown keys, and none at all, are UNAUTHENTICATED.
    expect(errorCode(await s.gql(UPSERT, { entities: [entity] }, `parley_${'x'.repeat(43)}`))).toBe('UNAUTHENTICATED');
    expect(errorCode(await s.gql(UPSERT, { entities: [entity] }, null))).toBe('UNAUTHENTICATED');

    expect(await upsert(key, [entity])).toEqual({ count: 1, changed: 1 });
    const used = ok(await s.gql(LIST_KEYS, {}, org.owner.token)).apiKeys.edges[0]!.node;
    expect(used.lastUsedAt).not.toBeNull();
    // Written at most once a minute: another request right after leaves it as it was.
    expect(await upsert(key, [entity])).toEqual({ count: 1, changed: 0 });
    expect(ok(await s.gql(LIST_KEYS, {}, org.owner.token)).apiKeys.edges[0]!.node.lastUsedAt).toBe(used.lastUsedAt);

    const revoked = ok(await s.gql(REVOKE_KEY, { id: used.id }, org.owner.token)).revokeApiKey;
    expect(revoked).toMatchObject({ id: used.id, revoked: true });
    // Idempotent: revoking again answers the same.
    expect(ok(await s.gql(REVOKE_KEY, { id: used.id }, org.owner.token)).revokeApiKey).toEqual(revoked);
    expect(errorCode(await s.gql(UPSERT, { entities: [entity] }, key))).toBe('UNAUTHENTICATED');
    expect(errorCode(await s.gql(REVOKE_KEY, { id: used.id }, (await createUser(s, org, 'MEMBER')).token))).toBe('FORBIDDEN');
  });
});

describe('entity types', () => {
  it('are managed by admins, with checked keys and URL templates, unique per organization', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    const staff = await createUser(s, org, 'STAFF');
    for (const user of [member, staff]) {
      expect(errorCode(await s.gql(CREATE_TYPE, { input: { key: 'task', displayName: 'Task' } }, user.token))).toBe('FORBIDDEN');
    }
    for (const key of ['Task', '1task', '_task', 'ta-sk', 'a'.repeat(41), 'ticket', 'request', 'change_order', 'message']) {
      const result = await s.gql(CREATE_TYPE, { input: { key, displayName: 'X' } }, org.owner.token);
      expect(errorCode(result), key).toBe('BAD_USER_INPUT');
    }
    for (const urlTemplate of ['ftp://erp.example.com/{id}', 'https://erp.example.com/tasks', 'erp.example.com/{id}', '/tasks/{id}']) {
      const result = await s.gql(CREATE_TYPE, { input: { key: 'task', displayName: 'X', urlTemplate } }, org.owner.token);
      expect(errorCode(result), urlTemplate).toBe('BAD_USER_INPUT');
    }
    const task = await newType(org, 'task', 'Task', 'https://erp.example.com/tasks/{id}');
    expect(task).toMatchObject({ key: 'task', displayName: 'Task', urlTemplate: 'https://erp.example.com/tasks/{id}' });
    expect(errorCode(await s.gql(CREATE_TYPE, { input: { key: 'task', displayName: 'Again' } }, org.owner.token))).toBe('CONFLICT');
    // Another organization has its own keys.
    await newType(await registerOrg(s), 'task');

    const sample = await newType(org, 'colour_sample_2', 'Colour sample', null);
    const updated = ok(await s.gql(UPDATE_TYPE, { input: { id: task.id, displayName: 'Work item' } }, org.owner.token)).updateEntityType;
    expect(updated).toMatchObject({ key: 'task', displayName: 'Work item', urlTemplate: 'https://erp.example.com/tasks/{id}' });
    expect(errorCode(await s.gql(UPDATE_TYPE, { input: { id: task.id, urlTemplate: 'nope' } }, org.owner.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(UPDATE_TYPE, { input: { id: task.id, displayName: 'x' } }, member.token))).toBe('FORBIDDEN');
    expect(ok(await s.gql(TYPES, {}, member.token)).entityTypes.map((t) => t.key)).toEqual(['colour_sample_2', 'task']);

    expect(errorCode(await s.gql(DELETE_TYPE, { id: sample.id }, member.token))).toBe('FORBIDDEN');
    expect(ok(await s.gql(DELETE_TYPE, { id: sample.id }, org.owner.token)).deleteEntityType).toBe(sample.id);
    expect(errorCode(await s.gql(DELETE_TYPE, { id: sample.id }, org.owner.token))).toBe('NOT_FOUND');
    expect(ok(await s.gql(TYPES, {}, member.token)).entityTypes.map((t) => t.key)).toEqual(['task']);
  });
});

describe('linked entities', () => {
  it('are upserted and deleted in batches, idempotently, with coded errors', async () => {
    const org = await registerOrg(s);
    const other = await registerOrg(s);
    await newType(org, 'task');
    const key = await newKey(org);
    const project = await createProject(s, org.owner.token);
    const foreignProject = await createProject(s, other.owner.token);

    const batch = Array.from({ length: 300 }, (_, i) => ({ type: 'task', externalId: `T-${i}`, label: `Task ${i}` }));
    expect(await upsert(key, batch)).toEqual({ count: 300, changed: 300 });
    expect(await upsert(key, batch)).toEqual({ count: 300, changed: 0 });
    const changedOne = batch.map((e, i) => (i === 7 ? { ...e, label: 'Task 7, renamed', projectId: project } : e));
    expect(await upsert(key, changedOne)).toEqual({ count: 300, changed: 1 });
    // Repeats of one entity in a call: the last wins.
    expect(
      await upsert(key, [
        { type: 'task', externalId: 'dup', label: 'first' },
        { type: 'task', externalId: 'dup', label: 'second' },
      ]),
    ).toEqual({ count: 1, changed: 1 });
    const ownerId = Buffer.from(org.owner.id, 'base64').toString().split(':')[1]!;
    const { organizationId } = await s.app.services.prisma.user.findUniqueOrThrow({ where: { id: ownerId } });
    const stored = await s.app.services.prisma.linkedEntity.findMany({ where: { organizationId, externalId: { in: ['T-7', 'dup'] } } });
    expect(stored.map((e) => e.label).sort()).toEqual(['Task 7, renamed', 'second']);
    expect(stored.find((e) => e.externalId === 'T-7')!.projectId).not.toBeNull();

    const tooMany = Array.from({ length: 501 }, (_, i) => ({ type: 'task', externalId: `x${i}`, label: 'x' }));
    expect(errorCode(await s.gql(UPSERT, { entities: tooMany }, key))).toBe('BAD_USER_INPUT');
    const unknownType = await s.gql(UPSERT, { entities: [{ type: 'damage_report', externalId: '1', label: 'x' }] }, key);
    expect(errorCode(unknownType)).toBe('BAD_USER_INPUT');
    expect(unknownType.errors![0]!.message).toContain('damage_report');
    expect(errorCode(await s.gql(UPSERT, { entities: [{ type: 'ticket', externalId: '1', label: 'x' }] }, key))).toBe('BAD_USER_INPUT');
    for (const externalId of ['', 'has space', '-edge', 'a'.repeat(101)]) {
      expect(errorCode(await s.gql(UPSERT, { entities: [{ type: 'task', externalId, label: 'x' }] }, key)), externalId).toBe(
        'BAD_USER_INPUT',
      );
    }
    expect(errorCode(await s.gql(UPSERT, { entities: [{ type: 'task', externalId: '1', label: ' ' }] }, key))).toBe('BAD_USER_INPUT');
    expect(
      errorCode(await s.gql(UPSERT, { entities: [{ type: 'task', externalId: '1', label: 'x', url: 'javascript:alert(1)' }] }, key)),
    ).toBe('BAD_USER_INPUT');
    // Another organization's project is NOT_FOUND, exactly like a missing one.
    const foreign = await s.gql(UPSERT, { entities: [{ type: 'task', externalId: '1', label: 'x', projectId: foreignProject }] }, key);
    const missingId = Buffer.from(`Project:${'0190a0a0-0000-7000-8000-000000000000'}`).toString('base64');
    const missing = await s.gql(UPSERT, { entities: [{ type: 'task', externalId: '1', label: 'x', projectId: missingId }] }, key);
    expect(errorCode(foreign)).toBe('NOT_FOUND');
    expect(foreign.errors![0]!.message).toBe(missing.errors![0]!.message);

    const refs = [
      { type: 'task', externalId: 'T-1' },
      { type: 'task', externalId: 'T-2' },
      { type: 'task', externalId: 'never' },
      { type: 'nope', externalId: 'T-3' },
    ];
    expect(ok(await s.gql(DELETE, { refs }, key)).deleteLinkedEntities).toBe(2);
    expect(ok(await s.gql(DELETE, { refs }, key)).deleteLinkedEntities).toBe(0);
    // Another organization's key deletes nothing of this one's.
    await newType(other, 'task');
    expect(ok(await s.gql(DELETE, { refs: [{ type: 'task', externalId: 'T-3' }] }, await newKey(other))).deleteLinkedEntities).toBe(0);
    expect(ok(await s.gql(DELETE, { refs: [{ type: 'task', externalId: 'T-3' }] }, key)).deleteLinkedEntities).toBe(1);
  });
});

/** One organization with people, projects, entity types and entities to link. */
async function world() {
  const org = await registerOrg(s);
  const [member, member2, client] = await Promise.all([
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'CLIENT'),
  ]);
  const [granted, hidden] = await Promise.all([createProject(s, org.owner.token), createProject(s, org.owner.token)]);
  await grantAccess(s, org.owner.token, granted, client.id, 'CLIENT');
  const channel = await createChannel(s, org.owner.token, {
    kind: 'PROJECT',
    projectId: granted,
    memberIds: [member.id, member2.id, client.id],
  });
  await newType(org, 'task', 'Task', 'https://erp.example.com/tasks/{id}');
  const key = await newKey(org);
  await upsert(key, [
    { type: 'task', externalId: '45', label: 'Task #45: Paint main bedroom walls' },
    { type: 'task', externalId: 'A-1:x', label: 'Odd id', url: null },
    { type: 'task', externalId: 'in-granted', label: 'Granted project task', projectId: granted },
    { type: 'task', externalId: 'in-hidden', label: 'Hidden project task', projectId: hidden },
  ]);
  return { org, member, member2, client, granted, hidden, channel, key };
}

describe('Message.links', () => {
  it('resolves what the reader may see, in body order with ranges, and nothing else', async () => {
    const w = await world();
    const other = await registerOrg(s);
    await newType(other, 'task');
    await upsert(await newKey(other), [{ type: 'task', externalId: 'only-b', label: 'B\u2019s task' }]);
    const body =
      'Hey, see @task#45 and @task#in-hidden, @task#in-granted, @task#A-1:x, @task#404, @nope#1, @task#only-b, `@task#45` ' +
      'and @task#45 again';
    const message = await send(s, w.member.token, w.channel, body);
    const at = (token: string, from = 0) => body.indexOf(token, from);
    const second = at('@task#45', at('`@task#45`') + 2);

    const forMember = await linksOf(w.member.token, message.id);
    expect(brief(forMember)).toEqual([
      `${at('@task#45')}:45=Task #45: Paint main bedroom walls`,
      `${at('@task#in-hidden')}:in-hidden=Hidden project task`,
      `${at('@task#in-granted')}:in-granted=Granted project task`,
      `${at('@task#A-1:x')}:A-1:x=Odd id`,
      `${second}:45=Task #45: Paint main bedroom walls`,
    ]);
    expect(forMember[0]).toEqual({
      type: 'task',
      id: '45',
      typeName: 'Task',
      label: 'Task #45: Paint main bedroom walls',
      url: 'https://erp.example.com/tasks/45',
      nodeId: null,
      start: at('@task#45'),
      end: at('@task#45') + '@task#45'.length,
    });
    expect(forMember[3]!.url).toBe('https://erp.example.com/tasks/A-1%3Ax');

    // The client has no grant on the hidden project: that link is not there at all.
    expect(brief(await linksOf(w.client.token, message.id))).toEqual([
      `${at('@task#45')}:45=Task #45: Paint main bedroom walls`,
      `${at('@task#in-granted')}:in-granted=Granted project task`,
      `${at('@task#A-1:x')}:A-1:x=Odd id`,
      `${second}:45=Task #45: Paint main bedroom walls`,
    ]);

    // A label changed later shows the new label; a deleted entity is no link any more.
    await upsert(w.key, [{ type: 'task', externalId: '45', label: 'Task #45: Paint all walls' }]);
    await s.gql(DELETE, { refs: [{ type: 'task', externalId: 'A-1:x' }] }, w.key);
    expect(brief(await linksOf(w.member.token, message.id)).filter((l) => /:(45|A-1:x)=/.test(l))).toEqual([
      `${at('@task#45')}:45=Task #45: Paint all walls`,
      `${second}:45=Task #45: Paint all walls`,
    ]);

    // An edit's links replace the earlier ones.
    ok(await s.gql(EDIT, { id: message.id, body: 'now only @task#in-granted' }, w.member.token));
    expect(brief(await linksOf(w.member.token, message.id))).toEqual(['9:in-granted=Granted project task']);

    // A deleted message has no links, except for organization admins.
    ok(await s.gql(DELETE_MESSAGE, { id: message.id }, w.member.token));
    expect(await linksOf(w.member.token, message.id)).toEqual([]);
    expect(brief(await linksOf(w.org.owner.token, message.id))).toEqual(['9:in-granted=Granted project task']);
  });

  it('resolves the built-in types natively, each only for those who may see it', async () => {
    const w = await world();
    const ticket = ok(await s.gql(TICKET, { subject: 'Printer on fire' }, w.member.token)).openSupportTicket;
    const request = ok(await s.gql(REQUEST, { projectId: w.granted, title: 'More bricks' }, w.client.token)).createClientRequest;
    const first = await send(s, w.member2.token, w.channel, 'first words');
    const body = `@ticket#${ticket.number} @request#${request.number} @message#${first.seq} @ticket#9999 @request#9999 @message#9999 @change_order#1`;
    const message = await send(s, w.member.token, w.channel, body);
    const displayName = w.member2.username; // createUser names people after their username

    const forOwner = await linksOf(w.org.owner.token, message.id);
    expect(forOwner.map((l) => [l.type, l.label, l.nodeId, l.url])).toEqual([
      ['ticket', `Ticket #${ticket.number}: Printer on fire`, ticket.id, null],
      ['request', `Request #${request.number}: More bricks`, request.id, null],
      ['message', `Message #${first.seq} by ${displayName}`, first.id, null],
    ]);
    expect(forOwner.map((l) => l.typeName)).toEqual(['Support ticket', 'Client request', 'Message']);
    // The ticket is the member's: its requester and the agents see it; another member does not.
    expect((await linksOf(w.member.token, message.id)).map((l) => l.type)).toEqual(['ticket', 'request', 'message']);
    expect((await linksOf(w.member2.token, message.id)).map((l) => l.type)).toEqual(['request', 'message']);
    expect((await linksOf(w.client.token, message.id)).map((l) => l.type)).toEqual(['request', 'message']);

    // Outside a project, request numbers mean nothing; a message number means one of that channel.
    const group = await createChannel(s, w.org.owner.token, { memberIds: [w.member.id] });
    const elsewhere = await send(s, w.member.token, group, `@request#${request.number} @ticket#${ticket.number}`);
    expect((await linksOf(w.member.token, elsewhere.id)).map((l) => l.type)).toEqual(['ticket']);

    // A deleted message is no link target any more.
    ok(await s.gql(DELETE_MESSAGE, { id: first.id }, w.member2.token));
    expect((await linksOf(w.org.owner.token, message.id)).map((l) => l.type)).toEqual(['ticket', 'request']);
  });

  it('costs the same number of queries for a page of 5 messages as for 30', async () => {
    const w = await world();
    const ticket = ok(await s.gql(TICKET, { subject: 'Slow' }, w.client.token)).openSupportTicket;
    const countFor = async (messages: number) => {
      const channel = await createChannel(s, w.org.owner.token, { kind: 'PROJECT', projectId: w.granted, memberIds: [w.client.id] });
      const { seq } = await send(s, w.org.owner.token, channel, 'start');
      for (let i = 1; i < messages; i++) {
        await send(
          s,
          w.org.owner.token,
          channel,
          `#${i}: @task#45 @task#in-granted @task#in-hidden @ticket#${ticket.number} @message#${seq}`,
        );
      }
      const before = s.app.queryCount();
      const page = ok(await s.gql(PAGE, { c: channel }, w.client.token)).channel.messages.edges;
      const used = s.app.queryCount() - before;
      expect(page).toHaveLength(messages);
      const expected = ['45', 'in-granted', String(ticket.number), String(seq)].join();
      expect(page.slice(1).every((e) => e.node.links.map((l) => l.id).join() === expected)).toBe(true);
      return used;
    };
    expect(await countFor(30)).toBe(await countFor(5));
  });

  it('arrive with a live MessageAddedEvent over graphql-ws, resolved for each subscriber', async () => {
    const w = await world();
    const body = 'live: @task#45 @task#in-hidden';
    const subscribers = [w.member, w.client];
    const clients = subscribers.map((u) => wsClient(s.url, u.token, { keepOpen: true }));
    try {
      const streams = clients.map((client) =>
        collect(client, LIVE, { c: w.channel }, (d) =>
          d.channelEvents.__typename === 'MessageAddedEvent' ? d.channelEvents.message : null,
        ),
      );
      for (const stream of streams) await untilLive(stream, () => send(s, w.org.owner.token, w.channel, 'probe'));
      await send(s, w.org.owner.token, w.channel, body);
      const linked = async (stream: (typeof streams)[number]) => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const found = stream.items.find((m) => m?.body === body);
          if (found) return found;
          if (Date.now() > deadline) throw new Error('the linked message never arrived');
          await stream.waitFor(stream.items.length + 1, 500).catch(() => undefined);
        }
      };
      const [forMember, forClient] = await Promise.all([linked(streams[0]!), linked(streams[1]!)]);
      expect(brief(forMember.links)).toEqual(['6:45=Task #45: Paint main bedroom walls', '15:in-hidden=Hidden project task']);
      expect(brief(forClient.links)).toEqual(['6:45=Task #45: Paint main bedroom walls']);
      expect(forMember.links[0]).toMatchObject({ start: 6, end: 14 });
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });
  it('are resolved once per role for a live event, not once per subscriber', async () => {
    const w = await world();
    const extra = [await createUser(s, w.org, 'MEMBER')];
    const channel = await createChannel(s, w.org.owner.token, { memberIds: [w.member.id, w.member2.id, ...extra.map((u) => u.id)] });
    const costOf = async (subscribers: { token: string }[]) => {
      const clients = subscribers.map((u) => wsClient(s.url, u.token, { keepOpen: true }));
      try {
        const streams = clients.map((client) =>
          collect(client, LIVE, { c: channel }, (d) =>
            d.channelEvents.__typename === 'MessageAddedEvent' ? d.channelEvents.message : null,
          ),
        );
        for (const stream of streams) await untilLive(stream, () => send(s, w.org.owner.token, channel, 'probe'));
        await new Promise((r) => setTimeout(r, 100));
        const seen = streams.map((stream) => stream.items.length);
        const before = s.app.queryCount();
        await send(s, w.org.owner.token, channel, 'fan-out @task#45 @task#in-hidden');
        await Promise.all(streams.map((stream, i) => stream.waitFor(seen[i]! + 1)));
        const used = s.app.queryCount() - before;
        for (const stream of streams) expect(stream.items.at(-1)!.links.map((l) => l.id)).toEqual(['45', 'in-hidden']);
        return used;
      } finally {
        await Promise.all(clients.map((c) => c.dispose()));
      }
    };
    expect(await costOf([w.member, w.member2, ...extra])).toBe(await costOf([w.member]));
  });
});

describe('linkedMessages and linkedEntity', () => {
  it('list the messages linking an entity the viewer may see, newest first, and nothing for one they may not', async () => {
    const w = await world();
    const other = await registerOrg(s);
    await newType(other, 'task');
    await upsert(await newKey(other), [
      { type: 'task', externalId: '45', label: 'B\u2019s task 45' },
      { type: 'task', externalId: 'only-b', label: 'B\u2019s own' },
    ]);
    const bChannel = await createChannel(s, other.owner.token);
    await send(s, other.owner.token, bChannel, 'B talks about @task#45');

    const m1 = await send(s, w.member.token, w.channel, 'first about @task#45');
    const m2 = await send(s, w.member.token, w.channel, 'then `@task#45` in code and @task#in-hidden');
    const m3 = await send(s, w.member2.token, w.channel, 'again @task#45 and @task#in-hidden');
    const privateChannel = await createChannel(s, w.org.owner.token, { memberIds: [w.member2.id] });
    const m4 = await send(s, w.member2.token, privateChannel, 'private @task#45');
    const deleted = await send(s, w.member.token, w.channel, 'deleted @task#45');
    ok(await s.gql(DELETE_MESSAGE, { id: deleted.id }, w.member.token));

    const list = async (token: string, type: string, id: string, extra: { channelId?: string; projectId?: string } = {}) =>
      ok(await s.gql(LINKED_MESSAGES, { type, id, first: 10, ...extra }, token)).linkedMessages.edges.map((e) => e.node.id);
    expect(await list(w.member.token, 'task', '45')).toEqual([m3.id, m1.id]);
    expect(await list(w.member2.token, 'task', '45')).toEqual([m4.id, m3.id, m1.id]);
    expect(await list(w.member.token, 'task', 'in-hidden')).toEqual([m3.id, m2.id]);
    expect(await list(other.owner.token, 'task', '45')).toHaveLength(1);

    // Paged newest first.
    const page1 = ok(await s.gql(LINKED_MESSAGES, { type: 'task', id: '45', first: 2 }, w.member2.token)).linkedMessages;
    expect(page1.edges.map((e) => e.node.id)).toEqual([m4.id, m3.id]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = ok(await s.gql(LINKED_MESSAGES, { type: 'task', id: '45', first: 2, after: page1.pageInfo.endCursor }, w.member2.token));
    expect(page2.linkedMessages.edges.map((e) => e.node.id)).toEqual([m1.id]);

    // Unknown type or id, another organization's entity, a project the client may not see: all the same NOT_FOUND.
    const refusals = await Promise.all([
      s.gql(LINKED_MESSAGES, { type: 'task', id: 'in-hidden' }, w.client.token),
      s.gql(LINKED_MESSAGES, { type: 'task', id: '404' }, w.member.token),
      s.gql(LINKED_MESSAGES, { type: 'nope', id: '45' }, w.member.token),
      s.gql(LINKED_MESSAGES, { type: 'task', id: 'only-b' }, w.member.token),
    ]);
    for (const r of refusals)
      expect({ code: errorCode(r), message: r.errors?.[0]?.message }).toEqual({ code: 'NOT_FOUND', message: 'Linked entity not found' });

    // linkedEntity resolves one reference the same way; null for what the viewer may not see.
    const resolved = ok(await s.gql(LINKED_ENTITY, { type: 'task', id: '45' }, w.client.token)).linkedEntity;
    expect(resolved).toEqual({
      type: 'task',
      id: '45',
      label: 'Task #45: Paint main bedroom walls',
      url: 'https://erp.example.com/tasks/45',
      nodeId: null,
    });
    expect(ok(await s.gql(LINKED_ENTITY, { type: 'task', id: 'in-hidden' }, w.client.token)).linkedEntity).toBeNull();
    expect(ok(await s.gql(LINKED_ENTITY, { type: 'task', id: 'in-hidden' }, w.member.token)).linkedEntity?.label).toBe(
      'Hidden project task',
    );
  });

  it('work for the built-in types, in their project or channel', async () => {
    const w = await world();
    const ticket = ok(await s.gql(TICKET, { subject: 'Help' }, w.member.token)).openSupportTicket;
    const request = ok(await s.gql(REQUEST, { projectId: w.granted, title: 'Tiles' }, w.client.token)).createClientRequest;
    const first = await send(s, w.member.token, w.channel, 'the start');
    const m = await send(s, w.client.token, w.channel, `@request#${request.number} @message#${first.seq} @ticket#${ticket.number}`);
    const list = async (token: string, vars: { type: string; id: string; channelId?: string; projectId?: string }) =>
      ok(await s.gql(LINKED_MESSAGES, vars, token)).linkedMessages.edges.map((e) => e.node.id);

    expect(await list(w.member.token, { type: 'ticket', id: String(ticket.number) })).toEqual([m.id]);
    expect(errorCode(await s.gql(LINKED_MESSAGES, { type: 'ticket', id: String(ticket.number) }, w.member2.token))).toBe('NOT_FOUND');
    expect(await list(w.client.token, { type: 'request', id: String(request.number), projectId: w.granted })).toEqual([m.id]);
    expect(await list(w.client.token, { type: 'request', id: String(request.number), channelId: w.channel })).toEqual([m.id]);
    expect(errorCode(await s.gql(LINKED_MESSAGES, { type: 'request', id: String(request.number) }, w.client.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(LINKED_MESSAGES, { type: 'request', id: '1', projectId: w.hidden }, w.client.token))).toBe('NOT_FOUND');
    expect(await list(w.member2.token, { type: 'message', id: String(first.seq), channelId: w.channel })).toEqual([m.id]);

    const entity = ok(await s.gql(LINKED_ENTITY, { type: 'request', id: String(request.number), channelId: w.channel }, w.member.token));
    expect(entity.linkedEntity).toMatchObject({ label: `Request #${request.number}: Tiles`, nodeId: request.id });
    expect(ok(await s.gql(LINKED_ENTITY, { type: 'request', id: String(request.number) }, w.member.token)).linkedEntity).toBeNull();
  });
});
