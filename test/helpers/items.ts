import type { GqlEndpoint, GqlResult } from './app.ts';
import { ok } from './fixtures.ts';

/** Client requests and support tickets through the API, for the tests of issue 4. */

export const REQUEST_FIELDS = `id number title description type status decisionNote decidedBy { id } requester { id } channelId
  changeOrder { id number title status sourceRequest { id } } sourceMessageId`;

export interface RequestView {
  id: string;
  number: number;
  title: string;
  status: string;
  decisionNote: string | null;
  decidedBy: { id: string } | null;
  requester: { id: string };
  channelId: string;
  changeOrder: { id: string; number: number; title: string; status: string; sourceRequest: { id: string } } | null;
  sourceMessageId: string | null;
}

export function fileRequest(
  s: GqlEndpoint,
  token: string,
  input: { projectId: string; title?: string; description?: string; type?: string; fromMessageId?: string; idempotencyKey?: string },
): Promise<GqlResult<{ createClientRequest: RequestView }>> {
  return s.gql(`mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { ${REQUEST_FIELDS} } }`, {
    input: { title: 'Bricks', description: '500 bricks for the east wall', type: 'MATERIAL', ...input },
  }, token);
}

export async function newRequest(s: GqlEndpoint, token: string, projectId: string, title = 'Bricks'): Promise<RequestView> {
  return ok(await fileRequest(s, token, { projectId, title })).createClientRequest;
}

/** The request mutations that take `{ id, note | reason, idempotencyKey }`. */
const REQUEST_ACTIONS = {
  approve: { field: 'approveClientRequest', input: 'ApproveClientRequestInput', text: 'note' },
  reject: { field: 'rejectClientRequest', input: 'RejectClientRequestInput', text: 'reason' },
  convert: { field: 'convertClientRequest', input: 'ConvertClientRequestInput', text: 'note' },
  withdraw: { field: 'withdrawClientRequest', input: 'WithdrawClientRequestInput', text: 'reason' },
} as const;

export type RequestAction = keyof typeof REQUEST_ACTIONS;

export function actOnRequest(
  s: GqlEndpoint,
  token: string,
  action: RequestAction,
  id: string,
  extra: { text?: string; idempotencyKey?: string } = {},
): Promise<GqlResult<Record<string, RequestView>>> {
  const { field, input, text } = REQUEST_ACTIONS[action];
  const value = extra.text ?? (action === 'reject' ? 'Over budget' : undefined);
  return s.gql(`mutation($input: ${input}!) { ${field}(input: $input) { ${REQUEST_FIELDS} } }`, {
    input: { id, ...(value !== undefined ? { [text]: value } : {}), ...(extra.idempotencyKey ? { idempotencyKey: extra.idempotencyKey } : {}) },
  }, token);
}

export const TICKET_FIELDS = `id number subject category priority status requester { id } assignee { id } channelId
  escalationReason resolution resolvedAt closedAt firstResponseAt firstResponseDueAt resolutionDueAt
  firstResponseBreached resolutionBreached waitingSince rating ratingComment createdAt`;

export interface TicketView {
  id: string;
  number: number;
  status: string;
  priority: string;
  category: string;
  requester: { id: string };
  assignee: { id: string } | null;
  channelId: string;
  escalationReason: string | null;
  resolution: string | null;
  resolvedAt: string | null;
  firstResponseAt: string | null;
  firstResponseDueAt: string;
  resolutionDueAt: string;
  firstResponseBreached: boolean;
  resolutionBreached: boolean;
  waitingSince: string | null;
  rating: number | null;
  createdAt: string;
}

export async function openTicket(s: GqlEndpoint, token: string, input: { subject?: string; priority?: string; category?: string; message?: string } = {}): Promise<TicketView> {
  return ok(
    await s.gql<{ openSupportTicket: TicketView }>(`mutation($input: OpenSupportTicketInput!) { openSupportTicket(input: $input) { ${TICKET_FIELDS} } }`, {
      input: { subject: 'Cannot sign in', category: 'ACCOUNT_ACCESS', priority: 'HIGH', message: 'The login page says my password is wrong.', ...input },
    }, token),
  ).openSupportTicket;
}

/** Ticket mutations by name, with the input fields each needs beside the id. */
const TICKET_ACTIONS = {
  inProgress: { field: 'setSupportTicketStatus', input: 'SetSupportTicketStatusInput', extra: { status: 'IN_PROGRESS' } },
  pendingUser: { field: 'setSupportTicketStatus', input: 'SetSupportTicketStatusInput', extra: { status: 'PENDING_USER' } },
  assign: { field: 'assignSupportTicket', input: 'AssignSupportTicketInput', extra: {} },
  escalate: { field: 'escalateSupportTicket', input: 'EscalateSupportTicketInput', extra: { reason: 'Customer is blocked' } },
  resolve: { field: 'resolveSupportTicket', input: 'ResolveSupportTicketInput', extra: { resolution: 'Password reset' } },
  reopen: { field: 'reopenSupportTicket', input: 'ReopenSupportTicketInput', extra: {} },
  close: { field: 'closeSupportTicket', input: 'CloseSupportTicketInput', extra: {} },
  priority: { field: 'changeSupportTicketPriority', input: 'ChangeSupportTicketPriorityInput', extra: { priority: 'URGENT' } },
  category: { field: 'changeSupportTicketCategory', input: 'ChangeSupportTicketCategoryInput', extra: { category: 'BILLING' } },
  rate: { field: 'rateSupportTicket', input: 'RateSupportTicketInput', extra: { rating: 4, comment: 'Quick' } },
} as const;

export type TicketAction = keyof typeof TICKET_ACTIONS;

export function actOnTicket(
  s: GqlEndpoint,
  token: string,
  action: TicketAction,
  id: string,
  extra: Record<string, unknown> = {},
): Promise<GqlResult<Record<string, TicketView>>> {
  const { field, input, extra: defaults } = TICKET_ACTIONS[action];
  return s.gql(`mutation($input: ${input}!) { ${field}(input: $input) { ${TICKET_FIELDS} } }`, { input: { id, ...defaults, ...extra } }, token);
}

/** The value a mutation returned (its only root field). */
export const result = <T>(data: Record<string, T>): T => Object.values(data)[0]!;

export interface AuditView {
  action: string;
  actorId: string | null;
  targetType: string;
  data: { from: string | null; to: string; reason: string | null } & Record<string, unknown>;
  createdAt: string;
}

/** The audit trail of one request or ticket, oldest first (as an organization admin). */
export async function auditOf(s: GqlEndpoint, adminToken: string, targetId: string): Promise<AuditView[]> {
  const data = ok(
    await s.gql<{ auditEvents: { edges: { node: AuditView }[] } }>(
      `query($t: ID!) { auditEvents(first: 100, filter: { targetId: $t }) { edges { node { action actorId targetType data createdAt } } } }`,
      { t: targetId },
      adminToken,
    ),
  );
  return data.auditEvents.edges.map((e) => e.node).reverse();
}

export interface NotificationView {
  id: string;
  type: string;
  read: boolean;
  clientRequestId: string | null;
  supportTicketId: string | null;
  data: Record<string, unknown>;
}

export async function notificationsOf(s: GqlEndpoint, token: string): Promise<NotificationView[]> {
  const data = ok(
    await s.gql<{ notifications: { edges: { node: NotificationView }[] } }>(
      `{ notifications(first: 100) { edges { node { id type read clientRequestId supportTicketId data } } } }`,
      {},
      token,
    ),
  );
  return data.notifications.edges.map((e) => e.node);
}

/** The system events of a channel's log, as a subscriber replaying it from the start sees them. */
export const SYSTEM_EVENTS = `subscription($c: ID!) { channelEvents(channelId: $c, after: 0) { seq __typename ... on SystemEvent { action fromStatus toStatus reason text itemId } } }`;
