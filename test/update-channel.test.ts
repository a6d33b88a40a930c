import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createProject, createUser, errorCode, ok, registerOrg, send, type TestOrg } from './helpers/fixtures.ts';
import { collect, untilLive, type AnyOf } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { UpdateChannelEventsSubscription, UpdateChannelInput } from './generated/graphql.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const UPDATE = graphql(`
  mutation UpdateChannelUpdate($input: UpdateChannelInput!) {
    updateChannel(input: $input) {
      id
      name
      topic
      description
      customFields
      visibility
      membersMayPin
      lastSeq
    }
  }
`);

const READ = graphql(`
  query UpdateChannelRead($id: ID!) {
    channel(id: $id) {
      name
      topic
      description
      customFields
      visibility
      membersMayPin
      archived
      lastSeq
    }
  }
`);

const UNARCHIVE = graphql(`
  mutation UpdateChannelUnarchive($id: ID!) {
    unarchiveChannel(channelId: $id) {
      archived
      lastSeq
    }
  }
`);

const ARCHIVE = graphql(`
  mutation UpdateChannelArchive($id: ID!) {
    archiveChannel(channelId: $id) {
      archived
    }
  }
`);

const CREATE = graphql(`
  mutation UpdateChannelCreate($input: CreateChannelInput!) {
    createChannel(input: $input) {
      id
      name
      description
      visibility
      membersMayPin
    }
  }
`);

const ADD = graphql(`
  mutation UpdateChannelAddMembers($c: ID!, $u: [ID!]!, $role: ChannelMemberRole) {
    addChannelMembers(channelId: $c, userIds: $u, role: $role) {
      id
    }
  }
`);

const OPEN_DIRECT = graphql(`
  mutation UpdateChannelOpenDirect($u: [ID!]!) {
    openDirectChannel(userIds: $u) {
      id
    }
  }
`);

const EVENTS = graphql(`
  subscription UpdateChannelEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      __typename
      seq
      ... on ChannelUpdatedEvent {
        changed
        archived
        name
        topic
        description
        customFields
        visibility
        membersMayPin
      }
    }
  }
`);
type Event = AnyOf<UpdateChannelEventsSubscription['channelEvents']>;

const update = (token: string, input: UpdateChannelInput) => s.gql(UPDATE, { input }, token);
const read = async (token: string, id: string) => ok(await s.gql(READ, { id }, token)).channel;

/** An organization with a channel its owner made, a member in it and a member outside it. */
async function world(): Promise<{ org: TestOrg; channel: string; member: { id: string; token: string }; outsider: { token: string } }> {
  const org = await registerOrg(s);
  const [member, outsider] = await Promise.all([createUser(s, org), createUser(s, org)]);
  const channel = await createChannel(s, org.owner.token, { memberIds: [member.id] });
  return { org, channel, member, outsider };
}

describe('updateChannel', () => {
  it('changes only the fields given, logs one ChannelUpdatedEvent with them, live and replayable', async () => {
    const { org, channel, member } = await world();
    const before = await read(org.owner.token, channel);
    const client = wsClient(s.url, member.token, { keepOpen: true });
    try {
      const stream = collect(client, EVENTS, { c: channel }, (d) => d.channelEvents as Event);
      const seen = (await untilLive(stream, () => send(s, org.owner.token, channel, 'probe'))).length;
      const updated = ok(
        await update(org.owner.token, {
          channelId: channel,
          topic: 'Paint schedule',
          description: 'Everything about the paint',
          customFields: { erpId: 45, tags: ['paint'] },
          membersMayPin: true,
        }),
      ).updateChannel;
      expect(updated).toMatchObject({
        name: before.name,
        topic: 'Paint schedule',
        description: 'Everything about the paint',
        customFields: { erpId: 45, tags: ['paint'] },
        visibility: 'PRIVATE',
        membersMayPin: true,
      });
      const [event] = (await stream.waitFor(seen + 1)).slice(seen);
      expect(event).toEqual({
        __typename: 'ChannelUpdatedEvent',
        seq: updated.lastSeq,
        changed: ['customFields', 'description', 'membersMayPin', 'topic'],
        archived: null,
        name: null,
        topic: 'Paint schedule',
        description: 'Everything about the paint',
        customFields: { erpId: 45, tags: ['paint'] },
        visibility: null,
        membersMayPin: true,
      });
      // Clearing: null clears, and `changed` tells it from "unchanged".
      const cleared = ok(await update(org.owner.token, { channelId: channel, topic: null, customFields: null })).updateChannel;
      expect(cleared).toMatchObject({ topic: null, customFields: null, description: 'Everything about the paint', membersMayPin: true });
      const [clearing] = (await stream.waitFor(seen + 2)).slice(seen + 1);
      expect(clearing).toMatchObject({ changed: ['customFields', 'topic'], topic: null, customFields: null, description: null });
      // Replayable from a cursor, by a member who was not listening.
      const replay = collect(client, EVENTS, { c: channel, after: updated.lastSeq - 1 }, (d) => d.channelEvents as Event);
      const replayed = await replay.waitFor(2);
      expect(replayed.map((e) => [e.seq, e.changed])).toEqual([
        [updated.lastSeq, ['customFields', 'description', 'membersMayPin', 'topic']],
        [cleared.lastSeq, ['customFields', 'topic']],
      ]);
      replay.unsubscribe();
    } finally {
      await client.dispose();
    }
  });

  it('changes nothing, writes nothing and logs nothing when every value given is the current one', async () => {
    const { org, channel } = await world();
    ok(await update(org.owner.token, { channelId: channel, topic: 't', customFields: { a: 1, b: { c: [1, 2] } } }));
    const before = await read(org.owner.token, channel);
    // The same custom fields with their keys in another order are the same fields.
    const again = ok(
      await update(org.owner.token, {
        channelId: channel,
        name: ` ${before.name!} `,
        topic: 't',
        customFields: { b: { c: [1, 2] }, a: 1 },
        visibility: 'PRIVATE',
        membersMayPin: false,
      }),
    ).updateChannel;
    expect(again.lastSeq).toBe(before.lastSeq);
    ok(await update(org.owner.token, { channelId: channel }));
    expect(await read(org.owner.token, channel)).toEqual(before);
  });

  it('logs one event when the same update is sent several times at once, and each of two racing updates its own change', async () => {
    const { org, channel } = await world();
    const before = (await read(org.owner.token, channel)).lastSeq;
    const same = await Promise.all([1, 2, 3, 4].map(() => update(org.owner.token, { channelId: channel, topic: 'once' })));
    expect(same.map((r) => ok(r).updateChannel.topic)).toEqual(['once', 'once', 'once', 'once']);
    expect((await read(org.owner.token, channel)).lastSeq).toBe(before + 1);
    await Promise.all([
      update(org.owner.token, { channelId: channel, topic: 'first', description: 'd' }),
      update(org.owner.token, { channelId: channel, topic: 'second', description: 'd' }),
    ]).then((results) => results.forEach((r) => ok(r)));
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const replay = collect(client, EVENTS, { c: channel, after: before + 1 }, (d) => d.channelEvents as Event);
      const events = await replay.waitFor(2);
      // Whichever committed first changed both fields; the other only the topic, and the last topic is the one that stays.
      expect(events.map((e) => e.changed)).toEqual([['description', 'topic'], ['topic']]);
      expect((await read(org.owner.token, channel)).topic).toBe(events[1]!.topic);
    } finally {
      await client.dispose();
    }
  });

  it('is for organization staff and the channel\u2019s owners and admins; others are refused, outsiders do not see it', async () => {
    const { org, channel, member, outsider } = await world();
    const [staff, admin, client] = await Promise.all([createUser(s, org, 'STAFF'), createUser(s, org), createUser(s, org, 'CLIENT')]);
    ok(await s.gql(ADD, { c: channel, u: [admin.id], role: 'ADMIN' }, org.owner.token));
    expect(errorCode(await update(member.token, { channelId: channel, topic: 'member' }))).toBe('FORBIDDEN');
    expect(errorCode(await update(outsider.token, { channelId: channel, topic: 'outsider' }))).toBe('NOT_FOUND');
    expect(errorCode(await update(client.token, { channelId: channel, topic: 'client' }))).toBe('NOT_FOUND');
    ok(await update(admin.token, { channelId: channel, topic: 'by the channel admin' }));
    ok(await update(staff.token, { channelId: channel, membersMayPin: true })); // staff need not be members
    expect(await read(org.owner.token, channel)).toMatchObject({ topic: 'by the channel admin', membersMayPin: true });
    // Archived channels are read-only until reopened.
    ok(await s.gql(ARCHIVE, { id: channel }, org.owner.token));
    expect(errorCode(await update(org.owner.token, { channelId: channel, topic: 'archived' }))).toBe('FORBIDDEN');
    ok(await s.gql(UNARCHIVE, { id: channel }, org.owner.token));
    ok(await update(org.owner.token, { channelId: channel, topic: 'reopened' }));
  });

  it('refuses bad input with BAD_USER_INPUT and the field', async () => {
    const { org, channel, member } = await world();
    const project = await createProject(s, org.owner.token);
    const projectChannel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project });
    const direct = ok(await s.gql(OPEN_DIRECT, { u: [member.id] }, org.owner.token)).openDirectChannel.id;
    const cases: [string, UpdateChannelInput, string][] = [
      ['empty name', { channelId: channel, name: '   ' }, 'name'],
      ['null name', { channelId: channel, name: null }, 'name'],
      ['long name', { channelId: channel, name: 'x'.repeat(81) }, 'name'],
      ['long topic', { channelId: channel, topic: 'x'.repeat(251) }, 'topic'],
      ['long description', { channelId: channel, description: 'x'.repeat(2001) }, 'description'],
      ['custom fields not an object', { channelId: channel, customFields: [1, 2] }, 'customFields'],
      ['custom fields a string', { channelId: channel, customFields: 'x' }, 'customFields'],
      ['custom fields too big', { channelId: channel, customFields: { big: 'x'.repeat(10_001) } }, 'customFields'],
      ['null visibility', { channelId: channel, visibility: null }, 'visibility'],
      ['null membersMayPin', { channelId: channel, membersMayPin: null }, 'membersMayPin'],
      ['public project channel', { channelId: projectChannel, visibility: 'PUBLIC' }, 'visibility'],
      ['renamed DM', { channelId: direct, name: 'ours' }, 'name'],
      ['public DM', { channelId: direct, visibility: 'PUBLIC' }, 'visibility'],
    ];
    for (const [label, input, field] of cases) {
      const result = await update(org.owner.token, input);
      expect([label, errorCode(result), result.errors?.[0]?.extensions?.field]).toEqual([label, 'BAD_USER_INPUT', field]);
    }
    // Nothing else of a DM is anyone's to manage.
    expect(errorCode(await update(org.owner.token, { channelId: direct, topic: 'ours' }))).toBe('FORBIDDEN');
    expect((await read(org.owner.token, channel)).lastSeq).toBe(1);
  });

  it('keeps names unique among a project\u2019s channels (CONFLICT) and trims them', async () => {
    const org = await registerOrg(s);
    const project = await createProject(s, org.owner.token);
    const first = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, name: 'Paint' });
    const second = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, name: 'Tiles' });
    const taken = await update(org.owner.token, { channelId: second, name: 'Paint' });
    expect([errorCode(taken), taken.errors?.[0]?.extensions?.field]).toEqual(['CONFLICT', 'name']);
    expect((await read(org.owner.token, second)).name).toBe('Tiles');
    ok(await update(org.owner.token, { channelId: first, name: '  Paint and plaster ' }));
    expect((await read(org.owner.token, first)).name).toBe('Paint and plaster');
    ok(await update(org.owner.token, { channelId: second, name: 'Paint' })); // free again
  });

  it('createChannel takes a description and, for GROUP channels, visibility', async () => {
    const org = await registerOrg(s);
    const created = ok(
      await s.gql(CREATE, { input: { kind: 'GROUP', name: 'Open', description: 'For all', visibility: 'PUBLIC' } }, org.owner.token),
    ).createChannel;
    expect(created).toMatchObject({ name: 'Open', description: 'For all', visibility: 'PUBLIC', membersMayPin: false });
    const project = await createProject(s, org.owner.token);
    const refused = await s.gql(
      CREATE,
      { input: { kind: 'PROJECT', projectId: project, name: 'P', visibility: 'PUBLIC' } },
      org.owner.token,
    );
    expect([errorCode(refused), refused.errors?.[0]?.extensions?.field]).toEqual(['BAD_USER_INPUT', 'visibility']);
  });
});

describe('unarchiveChannel', () => {
  it('reopens an archived channel for organization staff, with a ChannelUpdatedEvent; again, it changes nothing', async () => {
    const { org, channel, member, outsider } = await world();
    const admin = await createUser(s, org);
    ok(await s.gql(ADD, { c: channel, u: [admin.id], role: 'ADMIN' }, org.owner.token));
    ok(await s.gql(ARCHIVE, { id: channel }, org.owner.token));
    const archivedSeq = (await read(org.owner.token, channel)).lastSeq;
    expect(errorCode(await s.gql(UNARCHIVE, { id: channel }, outsider.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(UNARCHIVE, { id: channel }, member.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(UNARCHIVE, { id: channel }, admin.token))).toBe('FORBIDDEN'); // channel admins archive, staff reopen
    const reopened = ok(await s.gql(UNARCHIVE, { id: channel }, org.owner.token)).unarchiveChannel;
    expect(reopened).toEqual({ archived: false, lastSeq: archivedSeq + 1 });
    expect(ok(await s.gql(UNARCHIVE, { id: channel }, org.owner.token)).unarchiveChannel).toEqual(reopened);
    const client = wsClient(s.url, member.token, { keepOpen: true });
    try {
      const replay = collect(client, EVENTS, { c: channel, after: archivedSeq }, (d) => d.channelEvents as Event);
      const [event] = await replay.waitFor(1);
      expect(event).toMatchObject({ __typename: 'ChannelUpdatedEvent', seq: archivedSeq + 1, changed: ['archived'], archived: false });
      await new Promise((r) => setTimeout(r, 100));
      expect(replay.items).toHaveLength(1);
    } finally {
      await client.dispose();
    }
    expect((await send(s, member.token, channel, 'posting again')).body).toBe('posting again');
  });
});
