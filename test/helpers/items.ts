import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { graphql } from '../generated/index.ts';
import type {
  ClientRequestType,
  ItemsAuditEventsQuery,
  ItemsNotificationsQuery,
  RequestFieldsFragment,
  TicketCategory,
  TicketFieldsFragment,
  TicketPriority,
} from '../generated/graphql.ts';
import type { GqlEndpoint, GqlResult } from './app.ts';
import { ok } from './fixtures.ts';

/** Client requests and support tickets through the API, for the tests of issue 4. */

graphql(`
  fragment RequestFields on ClientRequest {
    id
    number
    title
    description
    type
    status
    decisionNote
    decidedBy {
      id
    }
    requester {
      id
    }
    channelId
    changeOrder {
      id
      number
      title
      status
      sourceRequest {
        id
      }
    }
    sourceMessageId
  }
`);

export type RequestView = RequestFieldsFragment;

const CreateClientRequest = graphql(`
  mutation CreateClientRequest($input: CreateClientRequestInput!) {
    createClientRequest(input: $input) {
      ...RequestFields
    }
  }
`);

export function fileRequest(
  s: GqlEndpoint,
  token: string,
  input: {
    projectId: string;
    title?: string;
    description?: string;
    type?: ClientRequestType;
    fromMessageId?: string;
    idempotencyKey?: string;
  },
) {
  return s.gql(
    CreateClientRequest,
    {
      input: { title: 'Bricks', description: '500 bricks for the east wall', type: 'MATERIAL', ...input },
    },
    token,
  );
}

export async function newRequest(s: GqlEndpoint, token: string, projectId: string, title = 'Bricks'): Promise<RequestView> {
  return ok(await fileRequest(s, token, { projectId, title })).createClientRequest;
}

/**
 * A mutation on one item that answers the item under its one root field. The
 * actions below fill its input from loose fields (the id, a note or reason,
 * what a test adds), so its variables are not typed field by field: the
 * server validates them, and some tests send what it must refuse.
 */
type ItemMutation<View> = TypedDocumentNode<Record<string, View>, { input: Record<string, unknown> }>;

/** The request mutations that take `{ id, note | reason, idempotencyKey }`, and the name of their text field. */
const REQUEST_ACTIONS = {
  approve: {
    document: graphql(`
      mutation ApproveClientRequest($input: ApproveClientRequestInput!) {
        approveClientRequest(input: $input) {
          ...RequestFields
        }
      }
    `),
    text: 'note',
  },
  reject: {
    document: graphql(`
      mutation RejectClientRequest($input: RejectClientRequestInput!) {
        rejectClientRequest(input: $input) {
          ...RequestFields
        }
      }
    `),
    text: 'reason',
  },
  convert: {
    document: graphql(`
      mutation ConvertClientRequest($input: ConvertClientRequestInput!) {
        convertClientRequest(input: $input) {
          ...RequestFields
        }
      }
    `),
    text: 'note',
  },
  withdraw: {
    document: graphql(`
      mutation WithdrawClientRequest($input: WithdrawClientRequestInput!) {
        withdrawClientRequest(input: $input) {
          ...RequestFields
        }
      }
    `),
    text: 'reason',
  },
} as const;

export type RequestAction = keyof typeof REQUEST_ACTIONS;

export function actOnRequest(
  s: GqlEndpoint,
  token: string,
  action: RequestAction,
  id: string,
  extra: { text?: string; idempotencyKey?: string } = {},
): Promise<GqlResult<Record<string, RequestView>>> {
  const { document, text } = REQUEST_ACTIONS[action];
  const value = extra.text ?? (action === 'reject' ? 'Over budget' : undefined);
  return s.gql(
    document as unknown as ItemMutation<RequestView>,
    {
      input: {
        id,
        ...(value !== undefined ? { [text]: value } : {}),
        ...(extra.idempotencyKey ? { idempotencyKey: extra.idempotencyKey } : {}),
      },
    },
    token,
  );
}

graphql(`
  fragment TicketFields on SupportTicket {
    id
    number
    subject
    category
    priority
    status
    requester {
      id
    }
    assignee {
      id
    }
    channelId
    escalationReason
    resolution
    resolvedAt
    closedAt
    firstResponseAt
    firstResponseDueAt
    resolutionDueAt
    firstResponseBreached
    resolutionBreached
    waitingSince
    rating
    ratingComment
    createdAt
  }
`);

export type TicketView = TicketFieldsFragment;

const OpenSupportTicket = graphql(`
  mutation OpenSupportTicket($input: OpenSupportTicketInput!) {
    openSupportTicket(input: $input) {
      ...TicketFields
    }
  }
`);

export async function openTicket(
  s: GqlEndpoint,
  token: string,
  input: { subject?: string; priority?: TicketPriority; category?: TicketCategory; message?: string } = {},
): Promise<TicketView> {
  return ok(
    await s.gql(
      OpenSupportTicket,
      {
        input: {
          subject: 'Cannot sign in',
          category: 'ACCOUNT_ACCESS',
          priority: 'HIGH',
          message: 'The login page says my password is wrong.',
          ...input,
        },
      },
      token,
    ),
  ).openSupportTicket;
}

const SetSupportTicketStatus = graphql(`
  mutation SetSupportTicketStatus($input: SetSupportTicketStatusInput!) {
    setSupportTicketStatus(input: $input) {
      ...TicketFields
    }
  }
`);

/** Ticket mutations by name, with the input fields each needs beside the id. */
const TICKET_ACTIONS = {
  inProgress: { document: SetSupportTicketStatus, extra: { status: 'IN_PROGRESS' } },
  pendingUser: { document: SetSupportTicketStatus, extra: { status: 'PENDING_USER' } },
  assign: {
    document: graphql(`
      mutation AssignSupportTicket($input: AssignSupportTicketInput!) {
        assignSupportTicket(input: $input) {
          ...TicketFields
        }
      }
    `),
    extra: {},
  },
  escalate: {
    document: graphql(`
      mutation EscalateSupportTicket($input: EscalateSupportTicketInput!) {
        escalateSupportTicket(input: $input) {
          ...TicketFields
        }
      }
    `),
    extra: { reason: 'Customer is blocked' },
  },
  resolve: {
    document: graphql(`
      mutation ResolveSupportTicket($input: ResolveSupportTicketInput!) {
        resolveSupportTicket(input: $input) {
          ...TicketFields
        }
      }
    `),
    extra: { resolution: 'Password reset' },
  },
  reopen: {
    document: graphql(`
      mutation ReopenSupportTicket($input: ReopenSupportTicketInput!) {
        reopenSupportTicket(input: $input) {
          ...TicketFields
        }
      }
    `),
    extra: {},
  },
  close: {
    document: graphql(`
      mutation CloseSupportTicket($input: CloseSupportTicketInput!) {
        closeSupportTicket(input: $input) {
          ...TicketFields
        }
      }
    `),
    extra: {},
  },
  priority: {
    document: graphql(`
      mutation ChangeSupportTicketPriority($input: ChangeSupportTicketPriorityInput!) {
        changeSupportTicketPriority(input: $input) {
          ...TicketFields
        }
      }
    `),
    extra: { priority: 'URGENT' },
  },
  category: {
    document: graphql(`
      mutation ChangeSupportTicketCategory($input: ChangeSupportTicketCategoryInput!) {
        changeSupportTicketCategory(input: $input) {
          ...TicketFields
        }
      }
    `),
    extra: { category: 'BILLING' },
  },
  rate: {
    document: graphql(`
      mutation RateSupportTicket($input: RateSupportTicketInput!) {
        rateSupportTicket(input: $input) {
          ...TicketFields
        }
      }
    `),
    extra: { rating: 4, comment: 'Quick' },
  },
} as const;

export type TicketAction = keyof typeof TICKET_ACTIONS;

export function actOnTicket(
  s: GqlEndpoint,
  token: string,
  action: TicketAction,
  id: string,
  extra: Record<string, unknown> = {},
): Promise<GqlResult<Record<string, TicketView>>> {
  const { document, extra: defaults } = TICKET_ACTIONS[action];
  return s.gql(document as unknown as ItemMutation<TicketView>, { input: { id, ...defaults, ...extra } }, token);
}

/** The value a mutation returned (its only root field). */
export const result = <D extends object>(data: D): D extends unknown ? D[keyof D] : never => Object.values(data)[0];

/** An audit event's `data` (JSON): what changed, from what, and why. */
export type AuditView = Omit<ItemsAuditEventsQuery['auditEvents']['edges'][number]['node'], 'data'> & {
  data: { from: string | null; to: string; reason: string | null } & Record<string, unknown>;
};

/** The audit trail of one request or ticket, oldest first (as an organization admin). */
export async function auditOf(s: GqlEndpoint, adminToken: string, targetId: string): Promise<AuditView[]> {
  const data = ok(
    await s.gql(
      graphql(`
        query ItemsAuditEvents($t: ID!) {
          auditEvents(first: 100, filter: { targetId: $t }) {
            edges {
              node {
                action
                actorId
                targetType
                data
                createdAt
              }
            }
          }
        }
      `),
      { t: targetId },
      adminToken,
    ),
  );
  // `data` is JSON to the schema; the audit trail gives it this shape.
  return data.auditEvents.edges.map((e) => e.node as AuditView).reverse();
}

/** A notification, its `data` (JSON) an object. */
export type NotificationView = Omit<ItemsNotificationsQuery['notifications']['edges'][number]['node'], 'data'> & {
  data: Record<string, unknown>;
};

export async function notificationsOf(s: GqlEndpoint, token: string): Promise<NotificationView[]> {
  const data = ok(
    await s.gql(
      graphql(`
        query ItemsNotifications {
          notifications(first: 100) {
            edges {
              node {
                id
                type
                read
                clientRequestId
                supportTicketId
                data
              }
            }
          }
        }
      `),
      {},
      token,
    ),
  );
  return data.notifications.edges.map((e) => e.node as NotificationView);
}

/** The system events of a channel's log, as a subscriber replaying it from the start sees them. */
export const SYSTEM_EVENTS = graphql(`
  subscription SystemEvents($c: ID!) {
    channelEvents(channelId: $c, after: 0) {
      seq
      __typename
      ... on SystemEvent {
        action
        fromStatus
        toStatus
        reason
        text
        itemId
      }
    }
  }
`);
