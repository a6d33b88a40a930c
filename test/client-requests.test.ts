import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import {
  actOnRequest,
  auditOf,
  fileRequest,
  newRequest,
  notificationsOf,
  result,
  SYSTEM_EVENTS,
  type RequestAction,
} from './helpers/items.ts';
import { collect } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { ClientRequestsTitlesQueryVariables, ClientRequestType } from './generated/graphql.ts';

let s: TestServer;
let org: TestOrg;
let project: string;
/** One user per role of the permission table, and two with no business in the project. */
let people: Record<'owner' | 'admin' | 'staff' | 'member' | 'client' | 'pm' | 'viewer' | 'outsider' | 'stranger', TestUser>;

beforeAll(async () => {
  s = await startServer();
  org = await registerOrg(s);
  const other = await registerOrg(s);
  project = await createProject(s, org.owner.token);
  const [admin, staff, member, client, pm, viewer, outsider] = await Promise.all([
    createUser(s, org, 'ADMIN'),
    createUser(s, org, 'STAFF'),
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'CLIENT'),
    createUser(s, org, 'CLIENT'),
    createUser(s, org, 'CLIENT'),
    createUser(s, org, 'CLIENT'),
  ]);
  await grantAccess(s, org.owner.token, project, client.id, 'CLIENT');
  await grantAccess(s, org.owner.token, project, pm.id, 'EXTERNAL_PM');
  await grantAccess(s, org.owner.token, project, viewer.id, 'VIEWER');
  people = {
    owner: { ...org.owner, role: 'OWNER' },
    admin,
    staff,
    member,
    client,
    pm,
    viewer,
    outsider,
    stranger: { ...other.owner, role: 'OWNER' },
  };
});
afterAll(async () => {
  await s?.stop();
});

/** A request in the given status, filed by the client and moved there by staff (or withdrawn by the client). */
async function requestIn(status: 'PENDING' | 'APPROVED' | 'REJECTED' | 'CONVERTED' | 'WITHDRAWN') {
  const request = await newRequest(s, people.client.token, project);
  const move: Partial<Record<typeof status, [keyof typeof people, RequestAction]>> = {
    APPROVED: ['staff', 'approve'],
    REJECTED: ['staff', 'reject'],
    CONVERTED: ['staff', 'convert'],
    WITHDRAWN: ['client', 'withdraw'],
  };
  const step = move[status];
  if (step) expect(result(ok(await actOnRequest(s, people[step[0]].token, step[1], request.id))).status).toBe(status);
  return request;
}

describe('client requests: status machine', () => {
  const allowed: Record<RequestAction | 'edit', string[]> = {
    approve: ['PENDING'],
    reject: ['PENDING'],
    convert: ['PENDING', 'APPROVED'],
    withdraw: ['PENDING'],
    edit: ['PENDING'],
  };
  const after: Record<RequestAction | 'edit', string> = {
    approve: 'APPROVED',
    reject: 'REJECTED',
    convert: 'CONVERTED',
    withdraw: 'WITHDRAWN',
    edit: 'PENDING',
  };
  const statuses = ['PENDING', 'APPROVED', 'REJECTED', 'CONVERTED', 'WITHDRAWN'] as const;
  const cases = (Object.keys(allowed) as (RequestAction | 'edit')[]).flatMap((action) => statuses.map((from) => [action, from] as const));

  it.each(cases)('%s from %s: allowed as the machine says, otherwise CONFLICT naming the status', async (action, from) => {
    const request = await requestIn(from);
    const actor = action === 'withdraw' || action === 'edit' ? people.client : people.staff;
    const answer =
      action === 'edit'
        ? await s.gql(
            graphql(`
              mutation ClientRequestsUpdateClientRequest($id: ID!) {
                updateClientRequest(input: { id: $id, title: "Red bricks" }) {
                  status
                  title
                }
              }
            `),
            { id: request.id },
            actor.token,
          )
        : await actOnRequest(s, actor.token, action, request.id);
    const now = ok(
      await s.gql(
        graphql(`
          query ClientRequestsClientRequest($id: ID!) {
            clientRequest(id: $id) {
              status
              title
            }
          }
        `),
        { id: request.id },
        people.owner.token,
      ),
    ).clientRequest;
    if (allowed[action].includes(from)) {
      expect(result(ok(answer)).status).toBe(after[action]);
      expect(now.status).toBe(after[action]);
    } else {
      expect(errorCode(answer)).toBe('CONFLICT');
      expect(answer.errors![0]!.extensions!.status).toBe(from);
      expect(answer.errors![0]!.message).toContain(from);
      expect(now).toEqual({ status: from, title: 'Bricks' });
    }
  });

  it('converting creates a draft change order, numbered per project and linked both ways', async () => {
    const otherProject = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, otherProject, people.client.id, 'CLIENT');
    const first = result(ok(await actOnRequest(s, people.staff.token, 'convert', (await requestIn('APPROVED')).id)));
    const second = result(ok(await actOnRequest(s, people.staff.token, 'convert', (await requestIn('PENDING')).id)));
    const elsewhere = result(
      ok(await actOnRequest(s, people.staff.token, 'convert', (await newRequest(s, people.client.token, otherProject, 'Paint')).id)),
    );
    expect(second.changeOrder!.number).toBe(first.changeOrder!.number + 1);
    expect(elsewhere.changeOrder).toMatchObject({ number: 1, title: 'Paint', status: 'DRAFT', sourceRequest: { id: elsewhere.id } });
    expect(first.changeOrder!.sourceRequest.id).toBe(first.id);
  });

  it('of two concurrent approvals one wins, the other gets CONFLICT; approve racing reject likewise', async () => {
    for (const pair of [
      ['approve', 'approve'],
      ['approve', 'reject'],
    ] as const) {
      const request = await requestIn('PENDING');
      const answers = await Promise.all(
        pair.map((action, i) => actOnRequest(s, [people.staff, people.admin][i]!.token, action, request.id)),
      );
      const won = answers.filter((a) => !a.errors);
      expect(won).toHaveLength(1);
      expect(answers.filter((a) => errorCode(a) === 'CONFLICT')).toHaveLength(1);
      const audit = await auditOf(s, people.owner.token, request.id);
      expect(audit.map((e) => e.action)).toEqual(['ClientRequest.CREATED', `ClientRequest.${result(won[0]!.data!).status}`]);
    }
  });
});

describe('client requests: who may do what', () => {
  type Who = keyof typeof people;
  const table: { who: Who; read: string; create: string; decide: string }[] = [
    { who: 'client', read: 'yes', create: 'yes', decide: 'FORBIDDEN' },
    { who: 'pm', read: 'yes', create: 'yes', decide: 'FORBIDDEN' },
    { who: 'viewer', read: 'yes', create: 'FORBIDDEN', decide: 'FORBIDDEN' },
    { who: 'member', read: 'yes', create: 'FORBIDDEN', decide: 'FORBIDDEN' },
    { who: 'staff', read: 'yes', create: 'yes', decide: 'yes' },
    { who: 'admin', read: 'yes', create: 'yes', decide: 'yes' },
    { who: 'owner', read: 'yes', create: 'yes', decide: 'yes' },
    { who: 'outsider', read: 'NOT_FOUND', create: 'NOT_FOUND', decide: 'NOT_FOUND' },
    { who: 'stranger', read: 'NOT_FOUND', create: 'NOT_FOUND', decide: 'NOT_FOUND' },
  ];
  const outcome = (answer: { errors?: unknown[] }) => (answer.errors ? errorCode(answer as never) : 'yes');

  it.each(table)('$who: read $read, create $create, approve/reject/convert $decide', async ({ who, read, create, decide }) => {
    const user = people[who];
    const request = await newRequest(s, people.client.token, project);
    expect(
      outcome(
        await s.gql(
          graphql(`
            query ClientRequestsRequestId($id: ID!) {
              clientRequest(id: $id) {
                id
              }
            }
          `),
          { id: request.id },
          user.token,
        ),
      ),
    ).toBe(read);
    const list = await s.gql(
      graphql(`
        query ClientRequestsClientRequests($p: ID!) {
          clientRequests(filter: { projectId: $p }, first: 100) {
            edges {
              node {
                id
              }
            }
          }
        }
      `),
      { p: project },
      user.token,
    );
    expect(outcome(list)).toBe(read);
    if (read === 'yes') expect(list.data!.clientRequests.edges.map((e) => e.node.id)).toContain(request.id);
    expect(
      outcome(
        await s.gql(
          graphql(`
            query ClientRequestsClientRequestCounts($p: ID!) {
              clientRequestCounts(projectId: $p) {
                count
              }
            }
          `),
          { p: project },
          user.token,
        ),
      ),
    ).toBe(read);
    expect(outcome(await fileRequest(s, user.token, { projectId: project }))).toBe(create);
    for (const action of ['approve', 'reject', 'convert'] as const) {
      const target = await newRequest(s, people.client.token, project);
      expect(outcome(await actOnRequest(s, user.token, action, target.id)), action).toBe(decide);
    }
  });

  it('only the requester edits or withdraws, and only while pending; staff decide on anyone\u2019s', async () => {
    const mine = await newRequest(s, people.pm.token, project);
    for (const who of ['client', 'staff', 'owner'] as const) {
      expect(errorCode(await actOnRequest(s, people[who].token, 'withdraw', mine.id)), who).toBe('FORBIDDEN');
      const edit = await s.gql(
        graphql(`
          mutation ClientRequestsRetitle($id: ID!) {
            updateClientRequest(input: { id: $id, title: "X" }) {
              id
            }
          }
        `),
        { id: mine.id },
        people[who].token,
      );
      expect(errorCode(edit), who).toBe('FORBIDDEN');
    }
    const edited = ok(
      await s.gql(
        graphql(`
          mutation ClientRequestsRedescribe($id: ID!) {
            updateClientRequest(input: { id: $id, description: "600 bricks", type: CHANGE_ORDER }) {
              description
              type
            }
          }
        `),
        { id: mine.id },
        people.pm.token,
      ),
    );
    expect(edited.updateClientRequest).toEqual({ description: '600 bricks', type: 'CHANGE_ORDER' });
    expect(result(ok(await actOnRequest(s, people.pm.token, 'withdraw', mine.id, { text: 'Found some' }))).status).toBe('WITHDRAWN');
    // Staff file requests too, and withdraw their own.
    const staffs = await newRequest(s, people.staff.token, project);
    expect(result(ok(await actOnRequest(s, people.staff.token, 'withdraw', staffs.id))).status).toBe('WITHDRAWN');
  });

  it('a client whose access was revoked no longer sees the project\u2019s requests', async () => {
    const leaving = await createUser(s, org, 'CLIENT');
    await grantAccess(s, org.owner.token, project, leaving.id, 'CLIENT');
    const request = await newRequest(s, leaving.token, project);
    ok(
      await s.gql(
        graphql(`
          mutation ClientRequestsRevokeProjectAccess($p: ID!, $u: ID!) {
            revokeProjectAccess(projectId: $p, userId: $u)
          }
        `),
        { p: project, u: leaving.id },
        org.owner.token,
      ),
    );
    expect(
      errorCode(
        await s.gql(
          graphql(`
            query ClientRequestsRequestId($id: ID!) {
              clientRequest(id: $id) {
                id
              }
            }
          `),
          { id: request.id },
          leaving.token,
        ),
      ),
    ).toBe('NOT_FOUND');
    expect(errorCode(await actOnRequest(s, leaving.token, 'withdraw', request.id))).toBe('NOT_FOUND');
  });
});

describe('client requests: data and lists', () => {
  it('keeps a link to the message a request was made from, if the requester may read it', async () => {
    const channel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, memberIds: [people.client.id] });
    const message = await send(s, org.owner.token, channel, 'We are short of bricks');
    const request = ok(await fileRequest(s, people.client.token, { projectId: project, fromMessageId: message.id })).createClientRequest;
    expect(request.sourceMessageId).toBe(message.id);
    const hidden = await createChannel(s, org.owner.token);
    const secret = await send(s, org.owner.token, hidden, 'staff only');
    expect(errorCode(await fileRequest(s, people.client.token, { projectId: project, fromMessageId: secret.id }))).toBe('NOT_FOUND');
  });

  it('refuses bad input with BAD_USER_INPUT and stores nothing', async () => {
    const before = ok(
      await s.gql(
        graphql(`
          query ClientRequestsCountsByStatus($p: ID!) {
            clientRequestCounts(projectId: $p) {
              status
              count
            }
          }
        `),
        { p: project },
        people.owner.token,
      ),
    );
    expect(errorCode(await fileRequest(s, people.client.token, { projectId: project, title: 'x'.repeat(201) }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await fileRequest(s, people.client.token, { projectId: project, title: '   ' }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await fileRequest(s, people.client.token, { projectId: project, type: 'BRIBE' as ClientRequestType }))).toBe(
      'BAD_USER_INPUT',
    );
    const request = await newRequest(s, people.client.token, project);
    expect(errorCode(await actOnRequest(s, people.staff.token, 'reject', request.id, { text: '' }))).toBe('BAD_USER_INPUT');
    const after = ok(
      await s.gql(
        graphql(`
          query ClientRequestsCountsByStatus($p: ID!) {
            clientRequestCounts(projectId: $p) {
              status
              count
            }
          }
        `),
        { p: project },
        people.owner.token,
      ),
    );
    const pending = (c: typeof after) => c.clientRequestCounts.find((x) => x.status === 'PENDING')!.count;
    expect(pending(after)).toBe(pending(before) + 1);
  });

  it('lists newest first or by status, filters, pages and counts per status', async () => {
    const listed = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, listed, people.client.id, 'CLIENT');
    await grantAccess(s, org.owner.token, listed, people.pm.id, 'CLIENT');
    const made: { id: string; title: string }[] = [];
    for (const title of ['one', 'two', 'three', 'four'])
      made.push(await newRequest(s, title === 'four' ? people.pm.token : people.client.token, listed, title));
    await actOnRequest(s, people.staff.token, 'approve', made[0]!.id);
    await actOnRequest(s, people.staff.token, 'reject', made[1]!.id);
    const titles = async (variables: ClientRequestsTitlesQueryVariables) =>
      ok(
        await s.gql(
          graphql(`
            query ClientRequestsTitles($filter: ClientRequestFilter, $orderBy: ClientRequestOrder, $first: Int) {
              clientRequests(filter: $filter, orderBy: $orderBy, first: $first) {
                edges {
                  node {
                    title
                    status
                  }
                }
                pageInfo {
                  hasNextPage
                }
              }
            }
          `),
          variables,
          people.owner.token,
        ),
      ).clientRequests;
    expect((await titles({ filter: { projectId: listed } })).edges.map((e) => e.node.title)).toEqual(['four', 'three', 'two', 'one']);
    expect((await titles({ filter: { projectId: listed }, orderBy: 'STATUS' })).edges.map((e) => e.node.status)).toEqual([
      'PENDING',
      'PENDING',
      'APPROVED',
      'REJECTED',
    ]);
    expect((await titles({ filter: { projectId: listed, status: 'APPROVED' } })).edges.map((e) => e.node.title)).toEqual(['one']);
    const byRequester = ok(
      await s.gql(
        graphql(`
          query ClientRequestsByRequester($p: ID!, $r: ID!) {
            clientRequests(filter: { projectId: $p, requesterId: $r }) {
              edges {
                node {
                  title
                }
              }
            }
          }
        `),
        { p: listed, r: people.pm.id },
        people.owner.token,
      ),
    );
    expect(byRequester.clientRequests.edges.map((e) => e.node.title)).toEqual(['four']);
    const page = await titles({ filter: { projectId: listed }, first: 3 });
    expect(page.edges).toHaveLength(3);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const counts = ok(
      await s.gql(
        graphql(`
          query ClientRequestsCountsByStatus($p: ID!) {
            clientRequestCounts(projectId: $p) {
              status
              count
            }
          }
        `),
        { p: listed },
        people.client.token,
      ),
    );
    expect(counts.clientRequestCounts).toEqual([
      { status: 'PENDING', count: 2 },
      { status: 'APPROVED', count: 1 },
      { status: 'REJECTED', count: 1 },
      { status: 'CONVERTED', count: 0 },
      { status: 'WITHDRAWN', count: 0 },
    ]);
  });
});

describe('client requests: audit, conversation, notifications, idempotency', () => {
  it('writes an audit entry and a system event for every change, and tells the requester (never the actor)', async () => {
    const request = await newRequest(s, people.client.token, project);
    ok(await actOnRequest(s, people.admin.token, 'approve', request.id, { text: 'Within budget' }));
    ok(await actOnRequest(s, people.staff.token, 'convert', request.id));
    const audit = await auditOf(s, people.owner.token, request.id);
    expect(audit.map((e) => [e.action, e.actorId, e.data.from, e.data.to, e.data.reason])).toEqual([
      ['ClientRequest.CREATED', people.client.id, null, 'PENDING', null],
      ['ClientRequest.APPROVED', people.admin.id, 'PENDING', 'APPROVED', 'Within budget'],
      ['ClientRequest.CONVERTED', people.staff.id, 'APPROVED', 'CONVERTED', null],
    ]);
    // Only admins read the audit trail.
    expect(
      errorCode(
        await s.gql(
          graphql(`
            query ClientRequestsAuditEvents {
              auditEvents {
                edges {
                  node {
                    id
                  }
                }
              }
            }
          `),
          {},
          people.staff.token,
        ),
      ),
    ).toBe('FORBIDDEN');

    // The conversation shows each change, on replay: the deciders joined it.
    const client = wsClient(s.url, people.client.token, { keepOpen: true });
    try {
      const replay = collect(client, SYSTEM_EVENTS, { c: request.channelId }, (d) => d.channelEvents);
      // Three members joining and three system events.
      const events = await replay.waitFor(6);
      expect(events.filter((e) => e.__typename === 'SystemEvent').map((e) => e.text)).toEqual([
        `Request created by ${people.client.username}`,
        `Approved by ${people.admin.username}: Within budget`,
        `Converted by ${people.staff.username}`,
      ]);
      expect(events.filter((e) => e.__typename === 'MemberAddedEvent')).toHaveLength(3);
    } finally {
      await client.dispose();
    }

    const told = (await notificationsOf(s, people.client.token)).filter((n) => n.clientRequestId === request.id);
    expect(told.map((n) => [n.type, n.data.from, n.data.to])).toEqual([
      ['CLIENT_REQUEST_STATUS', 'APPROVED', 'CONVERTED'],
      ['CLIENT_REQUEST_STATUS', 'PENDING', 'APPROVED'],
    ]);
    for (const actor of [people.admin, people.staff]) {
      expect((await notificationsOf(s, actor.token)).filter((n) => n.clientRequestId === request.id)).toEqual([]);
    }
    // The requester's own withdrawal tells nobody.
    const withdrawn = await newRequest(s, people.client.token, project);
    ok(await actOnRequest(s, people.client.token, 'withdraw', withdrawn.id));
    expect((await notificationsOf(s, people.client.token)).filter((n) => n.clientRequestId === withdrawn.id)).toEqual([]);

    // Marking read: the given ones, then all.
    const unread = async () =>
      ok(
        await s.gql(
          graphql(`
            query ClientRequestsUnreadNotificationCount {
              unreadNotificationCount
            }
          `),
          {},
          people.client.token,
        ),
      ).unreadNotificationCount as number;
    const before = await unread();
    expect(
      ok(
        await s.gql(
          graphql(`
            mutation ClientRequestsMarkNotificationsRead($ids: [ID!]) {
              markNotificationsRead(ids: $ids)
            }
          `),
          { ids: [told[0]!.id] },
          people.client.token,
        ),
      ).markNotificationsRead,
    ).toBe(1);
    expect(await unread()).toBe(before - 1);
    ok(
      await s.gql(
        graphql(`
          mutation ClientRequestsMarkAllRead {
            markNotificationsRead
          }
        `),
        {},
        people.client.token,
      ),
    );
    expect(await unread()).toBe(0);
    const unreadOnly = ok(
      await s.gql(
        graphql(`
          query ClientRequestsNotifications {
            notifications(unreadOnly: true) {
              edges {
                node {
                  id
                }
              }
            }
          }
        `),
        {},
        people.client.token,
      ),
    );
    expect(unreadOnly.notifications.edges).toEqual([]);
  });

  it('does a retried mutation with the same idempotency key once, and refuses the key for another mutation', async () => {
    const first = ok(await fileRequest(s, people.client.token, { projectId: project, idempotencyKey: 'file-once' })).createClientRequest;
    const retried = await Promise.all(
      [1, 2].map(() => fileRequest(s, people.client.token, { projectId: project, idempotencyKey: 'file-once' })),
    );
    for (const r of retried) expect(ok(r).createClientRequest).toEqual(first);

    const request = await newRequest(s, people.client.token, project);
    const approvals = await Promise.all(
      [1, 2, 3].map(() => actOnRequest(s, people.staff.token, 'approve', request.id, { idempotencyKey: 'approve-1' })),
    );
    for (const a of approvals) expect(result(ok(a)).status).toBe('APPROVED');
    expect((await auditOf(s, people.owner.token, request.id)).map((e) => e.action)).toEqual([
      'ClientRequest.CREATED',
      'ClientRequest.APPROVED',
    ]);
    expect((await notificationsOf(s, people.client.token)).filter((n) => n.clientRequestId === request.id)).toHaveLength(1);

    const reused = await actOnRequest(s, people.staff.token, 'convert', request.id, { idempotencyKey: 'approve-1' });
    expect(errorCode(reused)).toBe('CONFLICT');
    // Without a key, approving again is the conflict it is.
    expect(errorCode(await actOnRequest(s, people.staff.token, 'approve', request.id))).toBe('CONFLICT');
  });

  it('reaches live clients: the requester\u2019s viewerEvents and the conversation\u2019s channelEvents', async () => {
    const request = await newRequest(s, people.client.token, project);
    const client = wsClient(s.url, people.client.token, { keepOpen: true });
    try {
      const mine = collect(
        client,
        graphql(`
          subscription ClientRequestsViewerEvents {
            viewerEvents {
              __typename
              ... on ChannelAddedEvent {
                channelId
              }
              ... on NotificationEvent {
                notification {
                  type
                  clientRequestId
                  data
                }
              }
              ... on ClientRequestUpdatedEvent {
                clientRequestId
                status
                clientRequest {
                  status
                  decisionNote
                }
              }
            }
          }
        `),
        {},
        (d) => d.viewerEvents,
      );
      // Live once a channel the client is added to after subscribing shows up.
      for (let attempt = 0; !mine.items.some((e) => e.__typename === 'ChannelAddedEvent'); attempt++) {
        if (attempt === 20) throw new Error('viewerEvents never went live');
        await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, memberIds: [people.client.id] });
        await new Promise((r) => setTimeout(r, 100));
      }
      const conversation = collect(
        client,
        graphql(`
          subscription ClientRequestsChannelEvents($c: ID!) {
            channelEvents(channelId: $c, after: 0) {
              __typename
              ... on SystemEvent {
                text
                toStatus
              }
            }
          }
        `),
        { c: request.channelId },
        (d) => d.channelEvents,
      );
      ok(await actOnRequest(s, people.staff.token, 'approve', request.id, { text: 'Go ahead' }));
      for (let waited = 0; !conversation.items.some((e) => e.__typename === 'SystemEvent' && e.toStatus === 'APPROVED'); waited += 50) {
        if (waited > 5000) throw new Error(`no system event: ${JSON.stringify(conversation.items)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(conversation.items.filter((e) => e.__typename === 'SystemEvent').at(-1)).toEqual({
        __typename: 'SystemEvent',
        text: `Approved by ${people.staff.username}: Go ahead`,
        toStatus: 'APPROVED',
      });
      const live = (e: (typeof mine.items)[number]) => e.__typename === 'NotificationEvent' || e.__typename === 'ClientRequestUpdatedEvent';
      for (let waited = 0; mine.items.filter(live).length < 2; waited += 50) {
        if (waited > 5000) throw new Error(`no live updates: ${JSON.stringify(mine.items)} ${JSON.stringify(mine.errors)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const all = mine.items.filter(live);
      expect(all).toContainEqual({
        __typename: 'NotificationEvent',
        notification: {
          type: 'CLIENT_REQUEST_STATUS',
          clientRequestId: request.id,
          data: expect.objectContaining({ from: 'PENDING', to: 'APPROVED', reason: 'Go ahead' }),
        },
      });
      expect(all).toContainEqual({
        __typename: 'ClientRequestUpdatedEvent',
        clientRequestId: request.id,
        status: 'APPROVED',
        clientRequest: { status: 'APPROVED', decisionNote: 'Go ahead' },
      });
    } finally {
      await client.dispose();
    }
  });
});
