import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createUser, errorCode, ok, registerOrg, send, type TestOrg, type TestUser } from './helpers/fixtures.ts';
import {
  actOnTicket,
  auditOf,
  notificationsOf,
  openTicket,
  result,
  SYSTEM_EVENTS,
  type TicketAction,
  type TicketView,
} from './helpers/items.ts';
import { collect } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { SupportTicketsQueueQueryVariables, TicketStatus } from './generated/graphql.ts';

const HOUR = 3600_000;

/** The span from `from` to `to` (ISO times), which real time running alongside the test clock may stretch by a little. */
function expectSpan(from: string, to: string, ms: number): void {
  expect(Math.abs(Date.parse(to) - Date.parse(from) - ms)).toBeLessThan(2000);
}

let s: TestServer;
let org: TestOrg;
let other: TestOrg;
let people: Record<'owner' | 'admin' | 'admin2' | 'agent' | 'agent2' | 'member' | 'client' | 'bystander', TestUser>;

beforeAll(async () => {
  s = await startServer();
  [org, other] = await Promise.all([registerOrg(s), registerOrg(s)]);
  const [admin, admin2, agent, agent2, member, client, bystander] = await Promise.all([
    createUser(s, org, 'ADMIN'),
    createUser(s, org, 'ADMIN'),
    createUser(s, org, 'STAFF'),
    createUser(s, org, 'STAFF'),
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'CLIENT'),
    createUser(s, org, 'MEMBER'),
  ]);
  people = { owner: { ...org.owner, role: 'OWNER' }, admin, admin2, agent, agent2, member, client, bystander };
});
afterAll(async () => {
  await s?.stop();
});

const ticketOf = async (token: string, id: string) =>
  ok(
    await s.gql(
      graphql(`
        query SupportTicketsSupportTicket($id: ID!) {
          supportTicket(id: $id) {
            id
            status
            priority
            firstResponseAt
            firstResponseDueAt
            resolutionDueAt
            firstResponseBreached
            resolutionBreached
            waitingSince
            assignee {
              id
            }
            rating
          }
        }
      `),
      { id },
      token,
    ),
  ).supportTicket;

/** A ticket of the member's in the given status. */
async function ticketIn(status: TicketStatus): Promise<TicketView> {
  const ticket = await openTicket(s, people.member.token);
  const path: Record<TicketStatus, TicketAction[]> = {
    OPEN: [],
    IN_PROGRESS: ['inProgress'],
    PENDING_USER: ['inProgress', 'pendingUser'],
    ESCALATED: ['escalate'],
    RESOLVED: ['inProgress', 'resolve'],
    CLOSED: ['inProgress', 'resolve', 'close'],
  };
  for (const action of path[status]) ok(await actOnTicket(s, people.agent.token, action, ticket.id));
  expect((await ticketOf(people.agent.token, ticket.id)).status).toBe(status);
  return ticket;
}

describe('support tickets: status machine', () => {
  const moves: Record<string, { to: string; from: string[] }> = {
    inProgress: { to: 'IN_PROGRESS', from: ['OPEN', 'PENDING_USER', 'ESCALATED'] },
    pendingUser: { to: 'PENDING_USER', from: ['IN_PROGRESS'] },
    escalate: { to: 'ESCALATED', from: ['OPEN', 'IN_PROGRESS', 'PENDING_USER'] },
    resolve: { to: 'RESOLVED', from: ['IN_PROGRESS', 'ESCALATED'] },
    reopen: { to: 'IN_PROGRESS', from: ['RESOLVED'] },
    close: { to: 'CLOSED', from: ['RESOLVED'] },
  };
  const statuses = ['OPEN', 'IN_PROGRESS', 'PENDING_USER', 'ESCALATED', 'RESOLVED', 'CLOSED'] as const;
  const cases = Object.keys(moves).flatMap((action) => statuses.map((from) => [action as TicketAction, from] as const));

  it.each(cases)('%s from %s: allowed as the machine says, otherwise CONFLICT naming the status', async (action, from) => {
    const ticket = await ticketIn(from);
    const answer = await actOnTicket(s, people.agent.token, action, ticket.id);
    const now = await ticketOf(people.agent.token, ticket.id);
    if (moves[action]!.from.includes(from)) {
      expect(result(ok(answer)).status).toBe(moves[action]!.to);
      expect(now.status).toBe(moves[action]!.to);
    } else {
      expect(errorCode(answer)).toBe('CONFLICT');
      expect(answer.errors![0]!.extensions!.status).toBe(from);
      expect(now.status).toBe(from);
    }
  });

  it('assigning takes an OPEN ticket to IN_PROGRESS, keeps other open statuses, and is refused once resolved or closed', async () => {
    expect(result(ok(await actOnTicket(s, people.agent.token, 'assign', (await ticketIn('OPEN')).id)))).toMatchObject({
      status: 'IN_PROGRESS',
      assignee: { id: people.agent.id },
    });
    expect(result(ok(await actOnTicket(s, people.agent.token, 'assign', (await ticketIn('ESCALATED')).id)))).toMatchObject({
      status: 'ESCALATED',
    });
    for (const status of ['RESOLVED', 'CLOSED'] as const) {
      expect(errorCode(await actOnTicket(s, people.agent.token, 'assign', (await ticketIn(status)).id))).toBe('CONFLICT');
    }
  });

  it('of two agents resolving at once one wins, the other gets CONFLICT', async () => {
    const ticket = await ticketIn('IN_PROGRESS');
    const answers = await Promise.all([people.agent, people.agent2].map((a) => actOnTicket(s, a.token, 'resolve', ticket.id)));
    expect(answers.filter((a) => !a.errors)).toHaveLength(1);
    expect(answers.filter((a) => errorCode(a) === 'CONFLICT')).toHaveLength(1);
  });
});

describe('support tickets: who may do what', () => {
  it('requesters see and act on their own tickets; agents see the queue; others see nothing', async () => {
    const mine = await openTicket(s, people.client.token, { subject: 'Invoice wrong', category: 'BILLING' });
    const theirs = await openTicket(s, people.member.token);
    const ids = async (token: string) =>
      ok(
        await s.gql(
          graphql(`
            query SupportTicketsSupportTickets {
              supportTickets(first: 100) {
                edges {
                  node {
                    id
                  }
                }
              }
            }
          `),
          {},
          token,
        ),
      ).supportTickets.edges.map((e) => e.node.id);
    expect(await ids(people.client.token)).toEqual([mine.id]);
    expect(await ids(people.agent.token)).toEqual(expect.arrayContaining([mine.id, theirs.id]));
    expect(await ids(people.bystander.token)).toEqual([]);
    expect(
      errorCode(
        await s.gql(
          graphql(`
            query SupportTicketsTicketId($id: ID!) {
              supportTicket(id: $id) {
                id
              }
            }
          `),
          { id: theirs.id },
          people.client.token,
        ),
      ),
    ).toBe('NOT_FOUND');
    expect(
      errorCode(
        await s.gql(
          graphql(`
            query SupportTicketsTicketId($id: ID!) {
              supportTicket(id: $id) {
                id
              }
            }
          `),
          { id: mine.id },
          people.bystander.token,
        ),
      ),
    ).toBe('NOT_FOUND');
    expect(
      errorCode(
        await s.gql(
          graphql(`
            query SupportTicketsTicketId($id: ID!) {
              supportTicket(id: $id) {
                id
              }
            }
          `),
          { id: mine.id },
          other.owner.token,
        ),
      ),
    ).toBe('NOT_FOUND');

    // The requester only acts on their own, and only as requesters may.
    for (const action of ['inProgress', 'pendingUser', 'assign', 'escalate', 'resolve', 'priority', 'category'] as const) {
      expect(errorCode(await actOnTicket(s, people.client.token, action, mine.id)), action).toBe('FORBIDDEN');
      expect(errorCode(await actOnTicket(s, people.client.token, action, theirs.id)), action).toBe('NOT_FOUND');
    }
    // The requester talks in the ticket's conversation (a client too: it belongs to no project).
    expect((await send(s, people.client.token, mine.channelId, 'Here is the invoice number')).seq).toBeGreaterThan(0);
    expect(
      errorCode(
        await s.gql(
          graphql(`
            mutation SupportTicketsSendMessage($c: ID!) {
              sendMessage(input: { channelId: $c, body: "hi" }) {
                id
              }
            }
          `),
          { c: theirs.channelId },
          people.client.token,
        ),
      ),
    ).toBe('NOT_FOUND');

    // Rating: the requester's, after resolution, 1 to 5.
    expect(errorCode(await actOnTicket(s, people.client.token, 'rate', mine.id))).toBe('CONFLICT');
    ok(await actOnTicket(s, people.agent.token, 'inProgress', mine.id));
    ok(await actOnTicket(s, people.agent.token, 'resolve', mine.id));
    expect(errorCode(await actOnTicket(s, people.agent.token, 'rate', mine.id))).toBe('FORBIDDEN');
    expect(errorCode(await actOnTicket(s, people.client.token, 'rate', mine.id, { rating: 6 }))).toBe('BAD_USER_INPUT');
    expect(result(ok(await actOnTicket(s, people.client.token, 'rate', mine.id, { rating: 5, comment: 'Fast' })))).toMatchObject({
      rating: 5,
    });
    // The requester reopens and closes their own.
    expect(result(ok(await actOnTicket(s, people.client.token, 'reopen', mine.id, { reason: 'Still wrong' }))).status).toBe('IN_PROGRESS');
    ok(await actOnTicket(s, people.agent.token, 'resolve', mine.id));
    expect(result(ok(await actOnTicket(s, people.client.token, 'close', mine.id))).status).toBe('CLOSED');
    expect(errorCode(await actOnTicket(s, people.client.token, 'reopen', mine.id))).toBe('CONFLICT');
  });

  it('assigns to agents only; the assignee joins the conversation', async () => {
    const ticket = await openTicket(s, people.member.token);
    expect(errorCode(await actOnTicket(s, people.agent.token, 'assign', ticket.id, { assigneeId: people.bystander.id }))).toBe(
      'BAD_USER_INPUT',
    );
    expect(errorCode(await actOnTicket(s, people.agent.token, 'assign', ticket.id, { assigneeId: other.owner.id }))).toBe('NOT_FOUND');
    expect(result(ok(await actOnTicket(s, people.agent.token, 'assign', ticket.id, { assigneeId: people.agent2.id }))).assignee).toEqual({
      id: people.agent2.id,
    });
    expect((await send(s, people.agent2.token, ticket.channelId, 'On it')).seq).toBeGreaterThan(0);
  });

  it('only admins set SLA targets', async () => {
    const set = graphql(`
      mutation SupportTicketsSetSlaTarget {
        setSlaTarget(input: { priority: LOW, firstResponseMinutes: 600, resolutionMinutes: 6000 }) {
          firstResponseMinutes
        }
      }
    `);
    expect(errorCode(await s.gql(set, {}, people.agent.token))).toBe('FORBIDDEN');
    expect(
      errorCode(
        await s.gql(
          graphql(`
            mutation SupportTicketsSetLowSlaTarget {
              setSlaTarget(input: { priority: LOW, firstResponseMinutes: 600, resolutionMinutes: 60 }) {
                priority
              }
            }
          `),
          {},
          people.admin.token,
        ),
      ),
    ).toBe('BAD_USER_INPUT');
    expect(ok(await s.gql(set, {}, people.admin.token)).setSlaTarget.firstResponseMinutes).toBe(600);
    const targets = ok(
      await s.gql(
        graphql(`
          query SupportTicketsSlaTargets {
            slaTargets {
              priority
              firstResponseMinutes
              resolutionMinutes
            }
          }
        `),
        {},
        people.member.token,
      ),
    ).slaTargets;
    expect(targets).toEqual([
      { priority: 'LOW', firstResponseMinutes: 600, resolutionMinutes: 6000 },
      { priority: 'MEDIUM', firstResponseMinutes: 480, resolutionMinutes: 4320 },
      { priority: 'HIGH', firstResponseMinutes: 240, resolutionMinutes: 1440 },
      { priority: 'URGENT', firstResponseMinutes: 60, resolutionMinutes: 240 },
    ]);
    const low = await openTicket(s, people.member.token, { priority: 'LOW' });
    expect(Date.parse(low.firstResponseDueAt) - Date.parse(low.createdAt)).toBe(600 * 60_000);
    // Other organizations keep the defaults.
    expect(
      ok(
        await s.gql(
          graphql(`
            query SupportTicketsFirstResponseTarget {
              slaTargets {
                firstResponseMinutes
              }
            }
          `),
          {},
          other.owner.token,
        ),
      ).slaTargets[0]!.firstResponseMinutes,
    ).toBe(24 * 60);
  });
});

describe('support tickets: SLA clocks', () => {
  it('due times per priority; time waiting for the requester does not count; breaches show and filter', async () => {
    const clock = s.app.services.clock;
    const ticket = await openTicket(s, people.member.token, { priority: 'HIGH' });
    expect(Date.parse(ticket.firstResponseDueAt) - Date.parse(ticket.createdAt)).toBe(4 * HOUR);
    expect(Date.parse(ticket.resolutionDueAt) - Date.parse(ticket.createdAt)).toBe(24 * HOUR);
    // The requester's own messages are no response.
    await send(s, people.member.token, ticket.channelId, 'Any news?');
    clock.advance(3 * HOUR);
    expect(await ticketOf(people.agent.token, ticket.id)).toMatchObject({ firstResponseAt: null, firstResponseBreached: false });

    ok(await actOnTicket(s, people.agent.token, 'inProgress', ticket.id));
    ok(await actOnTicket(s, people.agent.token, 'pendingUser', ticket.id));
    clock.advance(10 * HOUR); // waiting for the requester: the clocks stand still
    const waiting = await ticketOf(people.agent.token, ticket.id);
    expect(waiting).toMatchObject({ status: 'PENDING_USER', firstResponseBreached: false, resolutionBreached: false });
    expect(waiting.waitingSince).not.toBeNull();
    expectSpan(ticket.createdAt, waiting.firstResponseDueAt, 14 * HOUR);

    ok(await actOnTicket(s, people.agent.token, 'inProgress', ticket.id));
    const back = await ticketOf(people.agent.token, ticket.id);
    expectSpan(ticket.createdAt, back.firstResponseDueAt, 14 * HOUR);
    expectSpan(ticket.createdAt, back.resolutionDueAt, 34 * HOUR);
    expect(back.firstResponseBreached).toBe(false);
    clock.advance(2 * HOUR); // 5 h of running clock: the first response (4 h) is late
    expect(await ticketOf(people.agent.token, ticket.id)).toMatchObject({ firstResponseBreached: true, resolutionBreached: false });
    const breached = async (value: boolean) =>
      ok(
        await s.gql(
          graphql(`
            query SupportTicketsBreached($b: Boolean) {
              supportTickets(first: 100, filter: { breached: $b }) {
                edges {
                  node {
                    id
                  }
                }
              }
            }
          `),
          { b: value },
          people.agent.token,
        ),
      ).supportTickets.edges.map((e) => e.node.id);
    expect(await breached(true)).toContain(ticket.id);
    expect(await breached(false)).not.toContain(ticket.id);

    // The first agent message is the first response, late; it stays breached.
    await send(s, people.agent.token, ticket.channelId, 'Sorry for the wait');
    const answered = await ticketOf(people.agent.token, ticket.id);
    expect(answered.firstResponseAt).not.toBeNull();
    expect(answered.firstResponseBreached).toBe(true);

    // A ticket answered in time is not breached, now or later.
    const prompt = await openTicket(s, people.member.token, { priority: 'URGENT' });
    ok(await actOnTicket(s, people.agent2.token, 'assign', prompt.id)); // joins the conversation; no response yet
    clock.advance(30 * 60_000);
    await send(s, people.agent2.token, prompt.channelId, 'Looking');
    expectSpan(prompt.createdAt, (await ticketOf(people.agent.token, prompt.id)).firstResponseAt!, 30 * 60_000);
    ok(await actOnTicket(s, people.agent.token, 'resolve', prompt.id));
    clock.advance(48 * HOUR);
    expect(await ticketOf(people.agent.token, prompt.id)).toMatchObject({ firstResponseBreached: false, resolutionBreached: false });
    expect(await breached(false)).toContain(prompt.id);
    // The unattended HIGH ticket is now past its resolution too.
    expect(await ticketOf(people.agent.token, ticket.id)).toMatchObject({ resolutionBreached: true });
  });

  it('a new priority moves both due times to its targets, keeping the time waited', async () => {
    const clock = s.app.services.clock;
    const ticket = await openTicket(s, people.member.token, { priority: 'LOW' });
    ok(await actOnTicket(s, people.agent.token, 'inProgress', ticket.id));
    ok(await actOnTicket(s, people.agent.token, 'pendingUser', ticket.id));
    clock.advance(HOUR);
    ok(await actOnTicket(s, people.agent.token, 'inProgress', ticket.id));
    const urgent = result(ok(await actOnTicket(s, people.agent.token, 'priority', ticket.id, { priority: 'URGENT' })));
    expect(urgent.priority).toBe('URGENT');
    expectSpan(ticket.createdAt, urgent.firstResponseDueAt, 2 * HOUR);
    expectSpan(ticket.createdAt, urgent.resolutionDueAt, 5 * HOUR);
  });
});

describe('support tickets: notifications, audit, conversation, idempotency, lists', () => {
  it('tells the requester of status changes, the assignee of the assignment, the organization\u2019s admins of an escalation', async () => {
    const ticket = await openTicket(s, people.client.token);
    const about = async (user: TestUser) =>
      (await notificationsOf(s, user.token)).filter((n) => n.supportTicketId === ticket.id).map((n) => n.type);
    ok(await actOnTicket(s, people.agent.token, 'assign', ticket.id, { assigneeId: people.agent2.id }));
    ok(await actOnTicket(s, people.admin.token, 'escalate', ticket.id, { reason: 'Key account' }));
    expect(await about(people.agent2)).toEqual(['SUPPORT_TICKET_ASSIGNED']);
    expect(await about(people.client)).toEqual(['SUPPORT_TICKET_STATUS', 'SUPPORT_TICKET_STATUS']);
    // Admins of this organization, except the one who escalated; not staff, not other organizations.
    expect(await about(people.owner)).toEqual(['SUPPORT_TICKET_ESCALATED']);
    expect(await about(people.admin2)).toEqual(['SUPPORT_TICKET_ESCALATED']);
    for (const user of [people.admin, people.agent, { token: other.owner.token } as TestUser]) expect(await about(user)).toEqual([]);
    // Self-assignment and the requester's own moves tell nobody about themselves.
    ok(await actOnTicket(s, people.agent2.token, 'inProgress', ticket.id));
    ok(await actOnTicket(s, people.agent2.token, 'resolve', ticket.id));
    const before = (await about(people.client)).length;
    ok(await actOnTicket(s, people.client.token, 'reopen', ticket.id));
    expect(await about(people.client)).toHaveLength(before);
    const self = await openTicket(s, people.member.token);
    ok(await actOnTicket(s, people.agent.token, 'assign', self.id));
    expect((await notificationsOf(s, people.agent.token)).filter((n) => n.supportTicketId === self.id)).toEqual([]);
  });

  it('records every change in the audit trail and the conversation, and does a keyed retry once', async () => {
    const ticket = await openTicket(s, people.member.token, { priority: 'MEDIUM' });
    const assigns = await Promise.all(
      [1, 2].map(() =>
        actOnTicket(s, people.agent.token, 'assign', ticket.id, { assigneeId: people.agent2.id, idempotencyKey: 'assign-7' }),
      ),
    );
    for (const a of assigns) expect(result(ok(a)).assignee).toEqual({ id: people.agent2.id });
    ok(await actOnTicket(s, people.agent.token, 'priority', ticket.id, { priority: 'HIGH' }));
    ok(await actOnTicket(s, people.agent2.token, 'resolve', ticket.id, { resolution: 'Cache cleared' }));
    const audit = await auditOf(s, people.owner.token, ticket.id);
    expect(audit.map((e) => [e.action, e.actorId, e.data.from, e.data.to])).toEqual([
      ['SupportTicket.OPENED', people.member.id, null, 'OPEN'],
      ['SupportTicket.ASSIGNED', people.agent.id, 'OPEN', 'IN_PROGRESS'],
      ['SupportTicket.PRIORITY_CHANGED', people.agent.id, 'IN_PROGRESS', 'IN_PROGRESS'],
      ['SupportTicket.RESOLVED', people.agent2.id, 'IN_PROGRESS', 'RESOLVED'],
    ]);
    const client = wsClient(s.url, people.member.token, { keepOpen: true });
    try {
      const replay = collect(client, SYSTEM_EVENTS, { c: ticket.channelId }, (d) => d.channelEvents);
      for (let waited = 0; replay.items.filter((e) => e.__typename === 'SystemEvent').length < 4; waited += 50) {
        if (waited > 5000) throw new Error(JSON.stringify(replay.items));
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(replay.items.filter((e) => e.__typename === 'SystemEvent').map((e) => e.text)).toEqual([
        `Ticket opened by ${people.member.username}`,
        `Assigned to ${people.agent2.username} by ${people.agent.username}`,
        `Priority changed from MEDIUM to HIGH by ${people.agent.username}`,
        `Resolved by ${people.agent2.username}: Cache cleared`,
      ]);
    } finally {
      await client.dispose();
    }
  });

  it('reaches the requester live through viewerEvents', async () => {
    const ticket = await openTicket(s, people.member.token);
    const client = wsClient(s.url, people.member.token, { keepOpen: true });
    try {
      const mine = collect(
        client,
        graphql(`
          subscription SupportTicketsViewerEvents {
            viewerEvents {
              __typename
              ... on ChannelActivityEvent {
                channelId
              }
              ... on NotificationEvent {
                notification {
                  type
                  supportTicketId
                  data
                }
              }
              ... on SupportTicketUpdatedEvent {
                supportTicketId
                status
                supportTicket {
                  status
                  assignee {
                    id
                  }
                }
              }
            }
          }
        `),
        {},
        (d) => d.viewerEvents,
      );
      // Live once a message written after subscribing shows as activity.
      for (let attempt = 0; !mine.items.some((e) => e.__typename === 'ChannelActivityEvent'); attempt++) {
        if (attempt === 20) throw new Error('viewerEvents never went live');
        await send(s, people.member.token, ticket.channelId, 'ping');
        await new Promise((r) => setTimeout(r, 100));
      }
      ok(await actOnTicket(s, people.agent.token, 'assign', ticket.id));
      const wanted = (e: (typeof mine.items)[number]) =>
        e.__typename === 'NotificationEvent' || e.__typename === 'SupportTicketUpdatedEvent';
      for (let waited = 0; mine.items.filter(wanted).length < 2; waited += 50) {
        if (waited > 5000) throw new Error(JSON.stringify(mine.items));
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(mine.items.filter(wanted)).toEqual(
        expect.arrayContaining([
          {
            __typename: 'NotificationEvent',
            notification: {
              type: 'SUPPORT_TICKET_STATUS',
              supportTicketId: ticket.id,
              data: expect.objectContaining({ from: 'OPEN', to: 'IN_PROGRESS' }),
            },
          },
          {
            __typename: 'SupportTicketUpdatedEvent',
            supportTicketId: ticket.id,
            status: 'IN_PROGRESS',
            supportTicket: { status: 'IN_PROGRESS', assignee: { id: people.agent.id } },
          },
        ]),
      );
    } finally {
      await client.dispose();
    }
  });

  it('filters and orders the queue, and counts it per status', async () => {
    const requester = await createUser(s, org, 'MEMBER');
    const low = await openTicket(s, requester.token, { priority: 'LOW', category: 'OTHER' });
    const urgent = await openTicket(s, requester.token, { priority: 'URGENT', category: 'TECHNICAL' });
    const high = await openTicket(s, requester.token, { priority: 'HIGH', category: 'BILLING' });
    ok(await actOnTicket(s, people.agent.token, 'assign', high.id, { assigneeId: people.agent2.id }));
    const queue = async (variables: SupportTicketsQueueQueryVariables) => {
      const data = ok(
        await s.gql(
          graphql(`
            query SupportTicketsQueue($filter: SupportTicketFilter, $orderBy: SupportTicketOrder) {
              supportTickets(first: 100, filter: $filter, orderBy: $orderBy) {
                edges {
                  node {
                    id
                  }
                }
              }
            }
          `),
          variables,
          people.agent.token,
        ),
      );
      return data.supportTickets.edges.map((e) => e.node.id);
    };
    const r = requester.id;
    expect(await queue({ filter: { requesterId: r } })).toEqual([high.id, urgent.id, low.id]);
    expect(await queue({ filter: { requesterId: r }, orderBy: 'PRIORITY' })).toEqual([urgent.id, high.id, low.id]);
    expect(await queue({ filter: { requesterId: r }, orderBy: 'OLDEST' })).toEqual([low.id, urgent.id, high.id]);
    expect(await queue({ filter: { requesterId: r }, orderBy: 'RESOLUTION_DUE' })).toEqual([urgent.id, high.id, low.id]);
    expect(await queue({ filter: { requesterId: r, unassigned: true } })).toEqual([urgent.id, low.id]);
    expect(await queue({ filter: { requesterId: r, assigneeId: people.agent2.id } })).toEqual([high.id]);
    expect(await queue({ filter: { requesterId: r, status: 'IN_PROGRESS' } })).toEqual([high.id]);
    expect(await queue({ filter: { requesterId: r, priority: 'URGENT', category: 'TECHNICAL' } })).toEqual([urgent.id]);
    const counts = ok(
      await s.gql(
        graphql(`
          query SupportTicketsSupportTicketCounts {
            supportTicketCounts {
              status
              count
            }
          }
        `),
        {},
        requester.token,
      ),
    ).supportTicketCounts;
    expect(counts).toEqual([
      { status: 'OPEN', count: 2 },
      { status: 'IN_PROGRESS', count: 1 },
      { status: 'PENDING_USER', count: 0 },
      { status: 'ESCALATED', count: 0 },
      { status: 'RESOLVED', count: 0 },
      { status: 'CLOSED', count: 0 },
    ]);
  });
});
