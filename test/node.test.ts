import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { buildSchema, isObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_LOADERS, NODES_MAX } from '../src/schema/node.ts';
import { startServer, type TestServer } from './helpers/app.ts';
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

// Relay's node(id) and nodes(ids): each id resolves through its type's read
// rule in access.ts, and everything the viewer may not read is null, exactly
// like an id that names nothing. (Other organizations' ids: test/isolation.test.ts.)

const encode = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

const NODES = `query($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename id
    ... on Message { body sender { username } channel { name } }
    ... on Channel { channelName: name kind }
    ... on Project { name }
    ... on User { username }
    ... on ClientRequest { title }
    ... on SupportTicket { subject }
    ... on Notification { type }
  }
}`;
const NODE = `query($id: ID!) { node(id: $id) { __typename id ... on Message { body } } }`;

let s: TestServer;
let org: TestOrg;
let member: TestUser;
let client: TestUser;
/** Global ids in organization A. */
const ids = {} as Record<
  'project' | 'channel' | 'message' | 'privateChannel' | 'privateMessage' | 'request' | 'ticket' | 'notification',
  string
>;
let other: { channel: string; message: string };

beforeAll(async () => {
  s = await startServer();
  org = await registerOrg(s);
  [member, client] = await Promise.all([createUser(s, org, 'MEMBER'), createUser(s, org, 'CLIENT')]);
  const owner = org.owner.token;
  ids.project = await createProject(s, owner, 'Harbour hotel');
  await grantAccess(s, owner, ids.project, client.id, 'CLIENT');
  ids.channel = await createChannel(s, owner, { kind: 'PROJECT', projectId: ids.project, name: 'site', memberIds: [member.id, client.id] });
  ids.message = (await send(s, member.token, ids.channel, 'hello from the site')).id;
  ids.privateChannel = await createChannel(s, owner, { name: 'staff room', memberIds: [member.id] });
  ids.privateMessage = (await send(s, member.token, ids.privateChannel, 'staff only')).id;
  ids.request = ok(
    await s.gql(
      `mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { id } }`,
      {
        input: { projectId: ids.project, title: 'More bricks', description: '500', type: 'MATERIAL' },
      },
      client.token,
    ),
  ).createClientRequest.id;
  ids.ticket = ok(
    await s.gql(
      `mutation { openSupportTicket(input: { subject: "Login broken", category: TECHNICAL, priority: HIGH, message: "help" }) { id } }`,
      {},
      member.token,
    ),
  ).openSupportTicket.id;
  ok(
    await s.gql(`mutation($id: ID!) { setSupportTicketStatus(input: { id: $id, status: IN_PROGRESS }) { id } }`, { id: ids.ticket }, owner),
  );
  ids.notification = ok(
    await s.gql(`{ notifications(first: 1) { edges { node { id } } } }`, {}, member.token),
  ).notifications.edges[0].node.id;

  const orgB = await registerOrg(s);
  const channelB = await createChannel(s, orgB.owner.token, { name: 'b' });
  other = { channel: channelB, message: (await send(s, orgB.owner.token, channelB, 'b')).id };
});
afterAll(async () => {
  await s?.stop();
});

describe('node and nodes', () => {
  it('cover every type that implements Node', () => {
    const schema = buildSchema(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8'));
    const nodeTypes = Object.values(schema.getTypeMap())
      .filter((type) => isObjectType(type) && type.getInterfaces().some((i) => i.name === 'Node'))
      .map((type) => type.name);
    expect(Object.keys(NODE_LOADERS).sort()).toEqual(nodeTypes.sort());
  });

  it('answer each id with its own type, in order, with type-specific fields', async () => {
    const order = [ids.message, ids.channel, ids.project, member.id, ids.request, ids.ticket];
    const { nodes } = ok(await s.gql(NODES, { ids: order }, org.owner.token));
    expect(nodes.map((n: { __typename: string }) => n.__typename)).toEqual([
      'Message',
      'Channel',
      'Project',
      'User',
      'ClientRequest',
      'SupportTicket',
    ]);
    expect(nodes.map((n: { id: string }) => n.id)).toEqual(order);
    expect(nodes[0]).toMatchObject({ body: 'hello from the site', sender: { username: member.username }, channel: { name: 'site' } });
    expect(nodes[1]).toMatchObject({ channelName: 'site', kind: 'PROJECT' });
    expect(nodes[2]).toMatchObject({ name: 'Harbour hotel' });
    expect(nodes[3]).toMatchObject({ username: member.username });
    expect(nodes[4]).toMatchObject({ title: 'More bricks' });
    expect(nodes[5]).toMatchObject({ subject: 'Login broken' });

    const single = ok(await s.gql(NODE, { id: ids.message }, member.token));
    expect(single.node).toEqual({ __typename: 'Message', id: ids.message, body: 'hello from the site' });
  });

  it('follow each type\u2019s read rule: what the viewer may not read is null', async () => {
    const all = [ids.channel, ids.message, ids.privateChannel, ids.privateMessage, ids.project, ids.request, ids.ticket, ids.notification];
    const seen = async (token: string) =>
      (ok(await s.gql(NODES, { ids: all }, token)).nodes as ({ __typename: string } | null)[]).map((n) => n?.__typename ?? null);
    // The client: their project's channel and message, project and request; not the staff room, the member's ticket or notification.
    expect(await seen(client.token)).toEqual(['Channel', 'Message', null, null, 'Project', 'ClientRequest', null, null]);
    // The member: both channels they are in, the request (members read every project's), their own ticket and notification.
    expect(await seen(member.token)).toEqual([
      'Channel',
      'Message',
      'Channel',
      'Message',
      'Project',
      'ClientRequest',
      'SupportTicket',
      'Notification',
    ]);
    // The owner is in both channels and reads every ticket; the notification is the member's.
    expect(await seen(org.owner.token)).toEqual([
      'Channel',
      'Message',
      'Channel',
      'Message',
      'Project',
      'ClientRequest',
      'SupportTicket',
      null,
    ]);
  });

  it('answer null, not an error, for missing, malformed, mistyped and foreign ids', async () => {
    const nulls = [
      encode('Channel', randomUUID()),
      encode('Message', randomUUID()),
      'not-a-global-id',
      '',
      encode('Channel', 'not-a-uuid'),
      Buffer.from(rawId(ids.channel)).toString('base64'),
      // Types that are no Node, and names that are no type.
      encode('Organization', rawId(ids.channel)),
      encode('Query', rawId(ids.channel)),
      encode('constructor', rawId(ids.channel)),
      encode('__proto__', rawId(ids.channel)),
      // A real id under another type's name.
      encode('Channel', rawId(ids.message)),
      encode('User', rawId(ids.project)),
      // Another organization's.
      other.channel,
      other.message,
    ];
    for (const id of nulls) {
      const result = await s.gql(NODE, { id }, org.owner.token);
      expect(result, id).toEqual({ data: { node: null } });
    }
    const many = await s.gql(NODES, { ids: nulls }, org.owner.token);
    expect(many).toEqual({ data: { nodes: nulls.map(() => null) } });
  });

  it('keep length and order with repeats and nulls among the ids', async () => {
    const list = [ids.message, 'garbage', ids.channel, ids.message, other.message, ids.channel];
    const { nodes } = ok(await s.gql(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: list }, member.token));
    expect(nodes).toEqual([{ id: ids.message }, null, { id: ids.channel }, { id: ids.message }, null, { id: ids.channel }]);
    expect(ok(await s.gql(`{ nodes(ids: []) { id } }`, {}, member.token)).nodes).toEqual([]);
  });

  it(`take at most ${NODES_MAX} ids`, async () => {
    const atLimit = Array.from({ length: NODES_MAX }, (_, i) => (i % 2 ? ids.channel : ids.message));
    expect(ok(await s.gql(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: atLimit }, member.token)).nodes).toHaveLength(
      NODES_MAX,
    );
    const over = await s.gql(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: [...atLimit, ids.channel] }, member.token);
    expect(errorCode(over), JSON.stringify(over.errors)).toBe('BAD_USER_INPUT');
    expect(over.data ?? null).toBeNull();
  });

  it('cost the same number of queries for any number of ids of a type, relations included', async () => {
    const messages = await Promise.all(['a', 'b', 'c', 'd'].map((body) => send(s, member.token, ids.channel, body)));
    const cost = async (list: string[]) => {
      const before = s.app.queryCount();
      ok(
        await s.gql(
          `query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Message { body sender { username } channel { kind } } ... on Channel { kind project { name } } } }`,
          { ids: list },
          member.token,
        ),
      );
      return s.app.queryCount() - before;
    };
    const one = await cost([messages[0]!.id, ids.channel]);
    expect(await cost([...messages.map((m) => m.id), ids.channel, ids.privateChannel])).toBe(one);
  });

  it('need a signed-in viewer', async () => {
    for (const token of [null, 'not-a-token']) {
      expect(errorCode(await s.gql(NODE, { id: ids.channel }, token))).toBe('UNAUTHENTICATED');
      expect(errorCode(await s.gql(NODES, { ids: [ids.channel] }, token))).toBe('UNAUTHENTICATED');
    }
  });
});
