import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { onEmbedded, startServer, uid, type GqlResult, type TestServer } from './helpers/app.ts';
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
import { SYSTEM_EVENTS } from './helpers/items.ts';
import { collect } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';

// Custom field definitions (issue 14 §2): who manages them, what each type
// accepts, required fields, what happens to stored values when a definition
// changes, request and ticket fields, and the lists' filters.

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const encode = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

const DEFINITION = `id entity key label type required options min max minDate maxDate position archived`;

interface Definition {
  id: string;
  key: string;
  type: string;
  options: string[];
  min: number | null;
  max: number | null;
  archived: boolean;
}

async function define(token: string, input: Record<string, unknown>): Promise<GqlResult<{ createCustomFieldDefinition: Definition }>> {
  return s.gql(
    `mutation($input: CreateCustomFieldDefinitionInput!) { createCustomFieldDefinition(input: $input) { ${DEFINITION} } }`,
    { input: { label: String(input.key), ...input } },
    token,
  );
}
const defined = async (token: string, input: Record<string, unknown>) => ok(await define(token, input)).createCustomFieldDefinition;

const updateDefinition = (token: string, input: Record<string, unknown>) =>
  s.gql(
    `mutation($input: UpdateCustomFieldDefinitionInput!) { updateCustomFieldDefinition(input: $input) { ${DEFINITION} } }`,
    { input },
    token,
  );
const archiveDefinition = (token: string, id: string) =>
  s.gql(`mutation($id: ID!) { archiveCustomFieldDefinition(id: $id) { ${DEFINITION} } }`, { id }, token);
const definitions = async (token: string, entity: string, includeArchived = false) =>
  ok(
    await s.gql(
      `query($entity: CustomFieldEntity!, $all: Boolean) { customFieldDefinitions(entity: $entity, includeArchived: $all) { ${DEFINITION} } }`,
      { entity, all: includeArchived },
      token,
    ),
  ).customFieldDefinitions as Definition[];

const sendWith = (token: string, channelId: string, customFields: unknown) =>
  s.gql(
    `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id customFields } }`,
    { input: { channelId, body: 'with fields', customFields } },
    token,
  );
const createChannelWith = (token: string, customFields: unknown) =>
  s.gql(
    `mutation($input: CreateChannelInput!) { createChannel(input: $input) { id customFields } }`,
    { input: { kind: 'GROUP', name: `cf-${uid()}`, ...(customFields === undefined ? {} : { customFields }) } },
    token,
  );
const updateChannel = (token: string, input: Record<string, unknown>) =>
  s.gql(`mutation($input: UpdateChannelInput!) { updateChannel(input: $input) { id topic customFields } }`, { input }, token);
const fileRequest = (token: string, projectId: string, customFields?: unknown) =>
  s.gql(
    `mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { id status customFields } }`,
    {
      input: {
        projectId,
        title: `r-${uid()}`,
        description: 'd',
        type: 'MATERIAL',
        ...(customFields === undefined ? {} : { customFields }),
      },
    },
    token,
  );
const setRequestFields = (token: string, id: string, customFields: unknown) =>
  s.gql(
    `mutation($input: UpdateClientRequestFieldsInput!) { updateClientRequestFields(input: $input) { id status customFields } }`,
    { input: { id, customFields } },
    token,
  );
const openTicket = (token: string, customFields?: unknown) =>
  s.gql(
    `mutation($input: OpenSupportTicketInput!) { openSupportTicket(input: $input) { id customFields } }`,
    {
      input: {
        subject: `t-${uid()}`,
        category: 'OTHER',
        priority: 'LOW',
        message: 'help',
        ...(customFields === undefined ? {} : { customFields }),
      },
    },
    token,
  );
const setTicketFields = (token: string, id: string, customFields: unknown) =>
  s.gql(
    `mutation($input: UpdateSupportTicketFieldsInput!) { updateSupportTicketFields(input: $input) { id customFields } }`,
    { input: { id, customFields } },
    token,
  );

/** Asserts BAD_USER_INPUT naming `field` in `extensions.field` and in the message. */
function expectFieldError(result: GqlResult<unknown>, field: string, message?: RegExp) {
  expect(errorCode(result), JSON.stringify(result.errors)).toBe('BAD_USER_INPUT');
  const error = result.errors![0]!;
  expect(error.extensions?.field).toBe(field);
  expect(error.message).toContain(field);
  if (message) expect(error.message).toMatch(message);
  expect(result.data ?? null).toBeNull();
}

async function auditActions(token: string, action: string): Promise<{ action: string; targetId: string; data: Record<string, unknown> }[]> {
  const data = ok(
    await s.gql(
      `query($filter: AuditEventFilter) { auditEvents(filter: $filter, first: 50) { edges { node { action targetId data } } } }`,
      { filter: { action } },
      token,
    ),
  );
  return data.auditEvents.edges.map((e: { node: unknown }) => e.node);
}

interface World {
  org: TestOrg;
  admin: TestUser;
  member: TestUser;
  client: TestUser;
  project: string;
  channel: string;
}

/** A fresh organization (its own definitions) with an admin, a member, a client of a project, and a channel with all of them. */
async function world(): Promise<World> {
  const org = await registerOrg(s);
  const [admin, member, client] = await Promise.all([createUser(s, org, 'ADMIN'), createUser(s, org), createUser(s, org, 'CLIENT')]);
  const project = await createProject(s, org.owner.token);
  await grantAccess(s, org.owner.token, project, client.id, 'CLIENT');
  const channel = await createChannel(s, org.owner.token, {
    kind: 'PROJECT',
    projectId: project,
    memberIds: [admin.id, member.id, client.id],
  });
  return { org, admin, member, client, project, channel };
}

describe('custom field definitions', () => {
  it('are managed by owners and admins only, read by everyone in the organization, and audited', async () => {
    const w = await world();
    const input = { entity: 'CLIENT_REQUEST', key: 'budget', type: 'NUMBER', min: 0, max: 1000 };
    for (const user of [w.member, w.client]) expect(errorCode(await define(user.token, input))).toBe('FORBIDDEN');
    const budget = await defined(w.admin.token, { ...input, label: 'Budget', position: 2 });
    expect(budget).toMatchObject({ key: 'budget', type: 'NUMBER', min: 0, max: 1000, required: false, archived: false });
    const site = await defined(w.org.owner.token, {
      entity: 'CLIENT_REQUEST',
      key: 'site',
      type: 'SINGLE_CHOICE',
      options: ['north', 'south'],
      position: 1,
    });
    // Everyone reads them (forms need them), in position order; other entities have their own.
    for (const user of [w.org.owner, w.admin, w.member, w.client]) {
      expect((await definitions(user.token, 'CLIENT_REQUEST')).map((d) => d.key)).toEqual(['site', 'budget']);
      expect(await definitions(user.token, 'MESSAGE')).toEqual([]);
    }
    for (const user of [w.member, w.client]) {
      expect(errorCode(await updateDefinition(user.token, { id: budget.id, label: 'Money' }))).toBe('FORBIDDEN');
      expect(errorCode(await archiveDefinition(user.token, budget.id))).toBe('FORBIDDEN');
    }
    expect(
      ok(await updateDefinition(w.admin.token, { id: budget.id, label: 'Money', max: 500 })).updateCustomFieldDefinition,
    ).toMatchObject({
      key: 'budget',
      label: 'Money',
      max: 500,
      min: 0,
    });
    // A bound cleared with null.
    expect(ok(await updateDefinition(w.admin.token, { id: budget.id, min: null })).updateCustomFieldDefinition).toMatchObject({
      min: null,
      max: 500,
    });
    expect(ok(await archiveDefinition(w.admin.token, site.id)).archiveCustomFieldDefinition.archived).toBe(true);
    expect((await definitions(w.member.token, 'CLIENT_REQUEST')).map((d) => d.key)).toEqual(['budget']);
    expect((await definitions(w.member.token, 'CLIENT_REQUEST', true)).map((d) => d.key)).toEqual(['site', 'budget']);
    // The key stays taken, archived or not.
    expect(errorCode(await define(w.admin.token, { entity: 'CLIENT_REQUEST', key: 'site', type: 'TEXT' }))).toBe('CONFLICT');
    // Every change is in the audit trail, with the definition's settings.
    const created = await auditActions(w.org.owner.token, 'customField.create');
    expect(created.map((e) => [e.targetId, e.data.key]).sort()).toEqual(
      [
        [budget.id, 'budget'],
        [site.id, 'site'],
      ].sort(),
    );
    const updated = await auditActions(w.org.owner.token, 'customField.update');
    expect(updated.map((e) => e.data.label)).toEqual(['Money', 'Money']);
    expect(updated.some((e) => (e.data.from as { max: number }).max === 1000)).toBe(true);
    expect((await auditActions(w.org.owner.token, 'customField.archive')).map((e) => e.targetId)).toEqual([site.id]);
  });

  it('are checked themselves: key, options, bounds', async () => {
    const w = await world();
    const t = w.admin.token;
    const cases: [Record<string, unknown>, string][] = [
      [{ entity: 'CHANNEL', key: '1bad', type: 'TEXT' }, 'key'],
      [{ entity: 'CHANNEL', key: 'with space', type: 'TEXT' }, 'key'],
      [{ entity: 'CHANNEL', key: 'pick', type: 'SINGLE_CHOICE' }, 'options'],
      [{ entity: 'CHANNEL', key: 'pick', type: 'MULTIPLE_CHOICE', options: ['a', 'a'] }, 'options'],
      [{ entity: 'CHANNEL', key: 'flag', type: 'BOOLEAN', options: ['a'] }, 'options'],
      [{ entity: 'CHANNEL', key: 'n', type: 'NUMBER', min: 5, max: 1 }, 'min'],
      [{ entity: 'CHANNEL', key: 'flag', type: 'BOOLEAN', max: 1 }, 'max'],
      [{ entity: 'CHANNEL', key: 'txt', type: 'TEXT', max: 2.5 }, 'max'],
      [{ entity: 'CHANNEL', key: 'd', type: 'DATE', minDate: '2026-02-30' }, 'minDate'],
      [{ entity: 'CHANNEL', key: 'd', type: 'DATE', minDate: '2026-03-01', maxDate: '2026-02-01' }, 'minDate'],
      [{ entity: 'CHANNEL', key: 'n', type: 'NUMBER', minDate: '2026-03-01' }, 'minDate'],
      [{ entity: 'CHANNEL', key: 'blank', type: 'TEXT', label: '  ' }, 'label'],
    ];
    for (const [input, field] of cases) {
      const result = await define(t, input);
      expect(errorCode(result), JSON.stringify(input)).toBe('BAD_USER_INPUT');
      expect(result.errors![0]!.extensions?.field, JSON.stringify(input)).toBe(field);
    }
    expect(await definitions(t, 'CHANNEL')).toEqual([]);
  });
});

describe('custom field values', () => {
  it('stay free-form while an entity has no definitions', async () => {
    const w = await world();
    const fields = { anything: { nested: [1, 'two', null] }, n: 3 };
    expect(ok(await sendWith(w.member.token, w.channel, fields)).sendMessage.customFields).toEqual(fields);
    expect(ok(await createChannelWith(w.member.token, fields)).createChannel.customFields).toEqual(fields);
    // Defining a field of channels leaves messages free-form.
    await defined(w.admin.token, { entity: 'CHANNEL', key: 'erpId', type: 'NUMBER' });
    expect(ok(await sendWith(w.member.token, w.channel, fields)).sendMessage.customFields).toEqual(fields);
    expectFieldError(await createChannelWith(w.member.token, fields), 'customFields.anything', /not a custom field of channels/);
  });

  it('cost a send no query once the definitions are cached, and a change is seen at once', async () => {
    const w = await world();
    // The first send reads the (empty) definitions; later ones are one statement each, as before definitions existed.
    ok(await sendWith(w.member.token, w.channel, { free: 1 }));
    const before = s.app.queryCount();
    for (let i = 0; i < 3; i++) ok(await sendWith(w.member.token, w.channel, i % 2 ? { free: i } : null));
    expect(s.app.queryCount() - before).toBe(3);
    // A new definition applies to the very next send.
    await defined(w.admin.token, { entity: 'MESSAGE', key: 'kind', type: 'TEXT', required: true });
    expectFieldError(await sendWith(w.member.token, w.channel, { free: 1 }), 'customFields.free');
    expectFieldError(await sendWith(w.member.token, w.channel, null), 'customFields.kind', /is required/);
    const cached = s.app.queryCount();
    ok(await sendWith(w.member.token, w.channel, { kind: 'note' }));
    expect(s.app.queryCount() - cached).toBe(1);
  });

  it('are checked against every type, naming the field, and stored normalized', async () => {
    const w = await world();
    const t = w.admin.token;
    const other = await registerOrg(s);
    const [stranger, gone] = await Promise.all([createUser(s, other), createUser(s, w.org)]);
    ok(await s.gql(`mutation($u: ID!) { deactivateUser(userId: $u) { id } }`, { u: gone.id }, w.org.owner.token));
    await defined(t, { entity: 'MESSAGE', key: 'note', type: 'TEXT', min: 2, max: 5 });
    await defined(t, { entity: 'MESSAGE', key: 'budget', type: 'NUMBER', min: 0, max: 1000 });
    await defined(t, { entity: 'MESSAGE', key: 'urgent', type: 'BOOLEAN' });
    await defined(t, { entity: 'MESSAGE', key: 'due', type: 'DATE', minDate: '2026-01-01', maxDate: '2026-12-31' });
    await defined(t, { entity: 'MESSAGE', key: 'color', type: 'SINGLE_CHOICE', options: ['red', 'green'] });
    await defined(t, { entity: 'MESSAGE', key: 'tags', type: 'MULTIPLE_CHOICE', options: ['a', 'b', 'c'], min: 1, max: 2 });
    await defined(t, { entity: 'MESSAGE', key: 'owner', type: 'USER' });
    const rejected: [string, unknown, RegExp][] = [
      ['note', 5, /must be a text between 2 and 5 characters/],
      ['note', 'x', /between 2 and 5/],
      ['note', 'toolong', /between 2 and 5/],
      ['budget', '12', /customFields\.budget must be a number between 0 and 1000/],
      ['budget', 1001, /between 0 and 1000/],
      ['budget', -1, /between 0 and 1000/],
      ['urgent', 'yes', /true or false/],
      ['urgent', 1, /true or false/],
      ['due', '2026-02-30', /YYYY-MM-DD between 2026-01-01 and 2026-12-31/],
      ['due', '2026-6-01', /YYYY-MM-DD/],
      ['due', '2025-12-31', /between 2026-01-01 and 2026-12-31/],
      ['due', '2026-01-01T00:00:00Z', /YYYY-MM-DD/],
      ['color', 'blue', /one of red, green/],
      ['color', ['red'], /one of red, green/],
      ['tags', 'a', /list of distinct options/],
      ['tags', ['a', 'a'], /distinct/],
      ['tags', ['a', 'd'], /a, b, c/],
      ['tags', [], /between 1 and 2 items/],
      ['tags', ['a', 'b', 'c'], /between 1 and 2 items/],
      ['owner', 'nobody', /active user of the organization/],
      ['owner', stranger.id, /active user of the organization/],
      ['owner', rawId(stranger.id), /active user of the organization/],
      ['owner', encode('User', randomUUID()), /active user of the organization/],
      ['owner', gone.id, /active user of the organization/],
      ['owner', encode('Channel', rawId(w.member.id)), /active user of the organization/],
      ['unknown', 1, /not a custom field of messages/],
    ];
    const messages = new Map<unknown, string>();
    for (const [key, value, message] of rejected) {
      const result = await sendWith(w.member.token, w.channel, { [key]: value });
      expectFieldError(result, `customFields.${key}`, message);
      if (key === 'owner') messages.set(value, result.errors![0]!.message);
    }
    // Another organization's user reads exactly like a missing one.
    expect(new Set(messages.values()).size).toBe(1);
    const sent = ok(
      await sendWith(w.member.token, w.channel, {
        note: ' hey ',
        budget: 12.5,
        urgent: false,
        due: '2026-02-28',
        color: 'green',
        tags: ['c', 'a'],
        owner: rawId(w.member.id),
        gone: null,
      }),
    ).sendMessage;
    // Text trimmed, a raw uuid stored as the user's global id, null keys left out.
    const stored = { note: 'hey', budget: 12.5, urgent: false, due: '2026-02-28', color: 'green', tags: ['c', 'a'], owner: w.member.id };
    expect(sent.customFields).toEqual(stored);
    const read = ok(await s.gql(`query($id: ID!) { message(id: $id) { customFields } }`, { id: sent.id }, w.client.token));
    expect(read.message.customFields).toEqual(stored);
    // The global id form is accepted as it is; a message without fields is fine while none is required.
    expect(ok(await sendWith(w.member.token, w.channel, { owner: w.admin.id })).sendMessage.customFields).toEqual({ owner: w.admin.id });
    expect(ok(await sendWith(w.member.token, w.channel, null)).sendMessage.customFields).toBeNull();
  });

  it('require required fields on every write of customFields', async () => {
    const w = await world();
    await defined(w.admin.token, { entity: 'CHANNEL', key: 'erpId', type: 'NUMBER', required: true });
    await defined(w.admin.token, { entity: 'CHANNEL', key: 'phase', type: 'TEXT' });
    await defined(w.admin.token, { entity: 'MESSAGE', key: 'kind', type: 'SINGLE_CHOICE', options: ['note', 'decision'], required: true });
    expectFieldError(await createChannelWith(w.member.token, undefined), 'customFields.erpId', /is required/);
    expectFieldError(await createChannelWith(w.member.token, { phase: 'one' }), 'customFields.erpId', /is required/);
    const channel = ok(await createChannelWith(w.member.token, { erpId: 45, phase: 'one' })).createChannel;
    expect(channel.customFields).toEqual({ erpId: 45, phase: 'one' });
    // Other settings change without touching the fields; writing the fields needs the required one.
    expect(ok(await updateChannel(w.member.token, { channelId: channel.id, topic: 'paint' })).updateChannel).toMatchObject({
      topic: 'paint',
      customFields: { erpId: 45, phase: 'one' },
    });
    expectFieldError(await updateChannel(w.member.token, { channelId: channel.id, customFields: { phase: 'two' } }), 'customFields.erpId');
    expectFieldError(await updateChannel(w.member.token, { channelId: channel.id, customFields: null }), 'customFields.erpId');
    expect(
      ok(await updateChannel(w.member.token, { channelId: channel.id, customFields: { erpId: 46 } })).updateChannel.customFields,
    ).toEqual({ erpId: 46 });
    // Sends too: a required message field makes every send carry it.
    expectFieldError(await sendWith(w.member.token, channel.id, null), 'customFields.kind', /is required/);
    expect(ok(await sendWith(w.member.token, channel.id, { kind: 'decision' })).sendMessage.customFields).toEqual({ kind: 'decision' });
  });

  it('of requests and tickets: set when filed, changed by those who may, recorded in the conversation and the audit trail', async () => {
    const w = await world();
    await defined(w.admin.token, { entity: 'CLIENT_REQUEST', key: 'budget', type: 'NUMBER', min: 0 });
    await defined(w.admin.token, { entity: 'SUPPORT_TICKET', key: 'site', type: 'SINGLE_CHOICE', options: ['north', 'south'] });
    expectFieldError(await fileRequest(w.client.token, w.project, { budget: -5 }), 'customFields.budget', /at least 0/);
    const request = ok(await fileRequest(w.client.token, w.project, { budget: 500 })).createClientRequest;
    expect(request.customFields).toEqual({ budget: 500 });
    // The requester while it is pending; a member who neither filed nor decides may not.
    expect(errorCode(await setRequestFields(w.member.token, request.id, { budget: 1 }))).toBe('FORBIDDEN');
    expect(ok(await setRequestFields(w.client.token, request.id, { budget: 600 })).updateClientRequestFields.customFields).toEqual({
      budget: 600,
    });
    expectFieldError(await setRequestFields(w.client.token, request.id, { budget: 'lots' }), 'customFields.budget');
    ok(await s.gql(`mutation($id: ID!) { approveClientRequest(input: { id: $id }) { id } }`, { id: request.id }, w.org.owner.token));
    expect(errorCode(await setRequestFields(w.client.token, request.id, { budget: 700 }))).toBe('CONFLICT');
    // Staff whatever the status; the status stays.
    expect(ok(await setRequestFields(w.admin.token, request.id, { budget: 700 })).updateClientRequestFields).toMatchObject({
      status: 'APPROVED',
      customFields: { budget: 700 },
    });
    const changes = await auditActions(w.org.owner.token, 'ClientRequest.FIELDS_CHANGED');
    expect(changes.map((c) => c.data.fields)).toEqual([['budget'], ['budget']]);
    // The conversation shows it, live and on replay, like other changes of the request.
    const channelId = ok(await s.gql(`query($id: ID!) { clientRequest(id: $id) { channelId } }`, { id: request.id }, w.client.token))
      .clientRequest.channelId as string;
    const lastSeq = ok(await s.gql(`query($c: ID!) { channel(id: $c) { lastSeq } }`, { c: channelId }, w.client.token)).channel
      .lastSeq as number;
    const client = wsClient(s.url, w.client.token, { keepOpen: true });
    try {
      const events = await collect(client, SYSTEM_EVENTS, { c: channelId }, (d) => d.channelEvents).waitFor(lastSeq);
      const system = events.flatMap((e) => (e.__typename === 'SystemEvent' && e.action === 'FIELDS_CHANGED' ? [e.text] : []));
      expect(system).toEqual([`Fields changed by ${w.client.username}`, `Fields changed by ${w.admin.username}`]);
    } finally {
      await client.dispose();
    }

    expectFieldError(await openTicket(w.member.token, { site: 'east' }), 'customFields.site', /one of north, south/);
    const ticket = ok(await openTicket(w.member.token, { site: 'north' })).openSupportTicket;
    expect(ticket.customFields).toEqual({ site: 'north' });
    // Agents change them; the requester does not.
    expect(errorCode(await setTicketFields(w.member.token, ticket.id, { site: 'south' }))).toBe('FORBIDDEN');
    expect(ok(await setTicketFields(w.admin.token, ticket.id, { site: 'south' })).updateSupportTicketFields.customFields).toEqual({
      site: 'south',
    });
    const read = ok(await s.gql(`query($id: ID!) { supportTicket(id: $id) { customFields } }`, { id: ticket.id }, w.member.token));
    expect(read.supportTicket.customFields).toEqual({ site: 'south' });
    expect((await auditActions(w.org.owner.token, 'SupportTicket.FIELDS_CHANGED')).map((c) => c.data.fields)).toEqual([['site']]);
  });

  it('keep stored values as they are when a definition changes; archived definitions stop validating', async () => {
    const w = await world();
    const t = w.admin.token;
    const budget = await defined(t, { entity: 'CLIENT_REQUEST', key: 'budget', type: 'NUMBER', max: 1000 });
    const color = await defined(t, { entity: 'CLIENT_REQUEST', key: 'color', type: 'SINGLE_CHOICE', options: ['red', 'green'] });
    const unused = await defined(t, { entity: 'CLIENT_REQUEST', key: 'unused', type: 'TEXT' });
    const request = ok(await fileRequest(w.org.owner.token, w.project, { budget: 900, color: 'red' })).createClientRequest;
    // Tighter bound, an option removed: nothing stored changes.
    ok(await updateDefinition(t, { id: budget.id, max: 500 }));
    ok(await updateDefinition(t, { id: color.id, options: ['green', 'blue'] }));
    const read = async () =>
      ok(await s.gql(`query($id: ID!) { clientRequest(id: $id) { customFields } }`, { id: request.id }, w.client.token)).clientRequest
        .customFields;
    expect(await read()).toEqual({ budget: 900, color: 'red' });
    // A write that leaves them as they are is accepted; a key it changes meets the definitions as they are now.
    expect(
      ok(await setRequestFields(w.org.owner.token, request.id, { budget: 900, color: 'red', unused: 'x' })).updateClientRequestFields
        .customFields,
    ).toEqual({
      budget: 900,
      color: 'red',
      unused: 'x',
    });
    expect((await auditActions(w.org.owner.token, 'ClientRequest.FIELDS_CHANGED')).map((c) => c.data.fields)).toEqual([['unused']]);
    expectFieldError(
      await setRequestFields(w.org.owner.token, request.id, { budget: 800, color: 'red' }),
      'customFields.budget',
      /between|at most 500/,
    );
    expectFieldError(
      await setRequestFields(w.org.owner.token, request.id, { budget: 900, color: 'red', unused: 'x', extra: 1 }),
      'customFields.extra',
    );
    // A type change: refused while stored values use the key, allowed otherwise.
    const refused = await updateDefinition(t, { id: budget.id, type: 'TEXT' });
    expect(errorCode(refused)).toBe('CONFLICT');
    expect(refused.errors![0]!.extensions?.field).toBe('type');
    ok(await setRequestFields(w.org.owner.token, request.id, { budget: 900, color: 'red' }));
    expect(ok(await updateDefinition(t, { id: unused.id, type: 'NUMBER', max: 3 })).updateCustomFieldDefinition).toMatchObject({
      type: 'NUMBER',
      max: 3,
    });
    // Archived: its stored value stays and may be kept, not changed.
    ok(await archiveDefinition(t, color.id));
    expect(await read()).toEqual({ budget: 900, color: 'red' });
    ok(await setRequestFields(w.org.owner.token, request.id, { budget: 900, color: 'red' }));
    expectFieldError(
      await setRequestFields(w.org.owner.token, request.id, { budget: 900, color: 'green' }),
      'customFields.color',
      /not a custom field/,
    );
    // Dropping a stale key is a change like any other.
    expect(ok(await setRequestFields(w.org.owner.token, request.id, { budget: 900 })).updateClientRequestFields.customFields).toEqual({
      budget: 900,
    });
    // With every definition archived, the entity is free-form again.
    ok(await archiveDefinition(t, budget.id));
    ok(await archiveDefinition(t, unused.id));
    expect(ok(await setRequestFields(w.org.owner.token, request.id, { anything: [1] })).updateClientRequestFields.customFields).toEqual({
      anything: [1],
    });
    // An archived definition changes no more.
    expect(errorCode(await updateDefinition(t, { id: budget.id, label: 'Again' }))).toBe('CONFLICT');
  });
});

describe('list filters on custom fields', () => {
  it('return exactly the matching rows of channels, messages, requests and tickets', async () => {
    const w = await world();
    const token = w.org.owner.token;
    const values = [{ erpId: 1 }, { erpId: 2 }, { erpId: 1, tags: ['x', 'y'] }, null];
    const channels: string[] = [];
    for (const v of values) channels.push(ok(await createChannelWith(token, v ?? undefined)).createChannel.id);
    const messages: string[] = [];
    for (const v of values) messages.push(ok(await sendWith(token, w.channel, v)).sendMessage.id);
    const requests: string[] = [];
    for (const v of values) requests.push(ok(await fileRequest(token, w.project, v ?? undefined)).createClientRequest.id);
    const tickets: string[] = [];
    for (const v of values) tickets.push(ok(await openTicket(token, v ?? undefined)).openSupportTicket.id);
    // Another organization's rows with the same fields never show.
    const other = await world();
    await createChannelWith(other.org.owner.token, { erpId: 1 });
    await fileRequest(other.org.owner.token, other.project, { erpId: 1 });
    await openTicket(other.org.owner.token, { erpId: 1 });

    const ids = (connection: { edges: { node: { id: string } }[] }) => connection.edges.map((e) => e.node.id).sort();
    const list = async (filter: unknown) => ({
      channels: ids(
        ok(
          await s.gql(
            `query($f: ChannelFilter) { channels(first: 50, filter: $f) { edges { node { id } } } }`,
            { f: { customFields: filter } },
            token,
          ),
        ).channels,
      ),
      messages: ids(
        ok(
          await s.gql(
            `query($c: ID!, $f: MessageFilter) { channel(id: $c) { messages(first: 50, filter: $f) { edges { node { id } } } } }`,
            { c: w.channel, f: { customFields: filter } },
            token,
          ),
        ).channel.messages,
      ),
      requests: ids(
        ok(
          await s.gql(
            `query($f: ClientRequestFilter) { clientRequests(first: 50, filter: $f) { edges { node { id } } } }`,
            { f: { customFields: filter } },
            token,
          ),
        ).clientRequests,
      ),
      tickets: ids(
        ok(
          await s.gql(
            `query($f: SupportTicketFilter) { supportTickets(first: 50, filter: $f) { edges { node { id } } } }`,
            { f: { customFields: filter } },
            token,
          ),
        ).supportTickets,
      ),
    });
    const expected = (indexes: number[]) => ({
      channels: indexes.map((i) => channels[i]!).sort(),
      messages: indexes.map((i) => messages[i]!).sort(),
      requests: indexes.map((i) => requests[i]!).sort(),
      tickets: indexes.map((i) => tickets[i]!).sort(),
    });
    expect(await list({ erpId: 1 })).toEqual(expected([0, 2]));
    expect(await list({ erpId: 2 })).toEqual(expected([1]));
    expect(await list({ tags: ['y'] })).toEqual(expected([2]));
    expect(await list({ erpId: 1, tags: ['x', 'y'] })).toEqual(expected([2]));
    expect(await list({ erpId: 3 })).toEqual(expected([]));
    // Other conditions still hold beside the filter.
    const pending = ok(
      await s.gql(
        `query($f: ClientRequestFilter) { clientRequests(first: 50, filter: $f) { edges { node { id } } } }`,
        { f: { customFields: { erpId: 1 }, status: 'APPROVED' } },
        token,
      ),
    );
    expect(pending.clientRequests.edges).toEqual([]);
    // A filter that is no object is refused.
    const bad = await s.gql(
      `query($f: ChannelFilter) { channels(first: 5, filter: $f) { edges { node { id } } } }`,
      { f: { customFields: [1] } },
      token,
    );
    expect(errorCode(bad)).toBe('BAD_USER_INPUT');
    const nullValue = await s.gql(
      `query($c: ID!, $f: MessageFilter) { channel(id: $c) { messages(first: 5, filter: $f) { edges { node { id } } } } }`,
      { c: w.channel, f: { customFields: { erpId: null } } },
      token,
    );
    expect(errorCode(nullValue)).toBe('BAD_USER_INPUT');
  });

  it.skipIf(onEmbedded)('uses the GIN index for containment (PostgreSQL plan with sequential scans off)', async () => {
    const client = new pg.Client(inject('databaseUrl'));
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL enable_seqscan = off');
      for (const table of ['Channel', 'Message', 'ClientRequest', 'SupportTicket']) {
        // The predicate the lists run (with their organization beside it, which the planner may also use on real data).
        const { rows } = await client.query(`EXPLAIN SELECT id FROM "${table}" WHERE "customFields" @> $1::jsonb`, [
          JSON.stringify({ erpId: 1 }),
        ]);
        const plan = rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
        expect(plan, plan).toContain(`${table}_customFields_idx`);
      }
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      await client.end();
    }
  });
});
