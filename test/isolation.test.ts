import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  buildSchema,
  getNamedType,
  isInputObjectType,
  parse,
  type GraphQLArgument,
  type GraphQLInputField,
  type OperationDefinitionNode,
} from 'graphql';
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
import { graphql } from './generated/index.ts';
import { uploadFile } from './helpers/upload.ts';

/**
 * Tenant isolation (DESIGN §1.6): organization B's owner, an admin who may do
 * everything inside B, calls every operation with organization A's ids. Each
 * call must fail with the same error as for an id that never existed (node
 * and nodes answer null for both instead), and leave both organizations as
 * they were.
 */

/** The ids a case may point at; `a` holds organization A's, `b` organization B's own. */
interface Ids {
  channel: string;
  archivedChannel: string;
  /** A PUBLIC GROUP channel, open to the organization (browseChannels, joinChannel). */
  openChannel: string;
  message: string;
  user: string;
  client: string;
  deactivatedUser: string;
  project: string;
  /** A pending client request in the project, filed by the client. */
  request: string;
  /** A support ticket of the member's, IN_PROGRESS. */
  ticket: string;
  /** The member's notification about that ticket. */
  notification: string;
  /** An API key of the organization (issue 11 §2). */
  apiKey: string;
  /** The organization's entity type `task`. */
  entityType: string;
  /** An upload of the owner's, not attached to anything yet (issue 12). */
  attachment: string;
  /** The owner's session, the one whose token the snapshots use (issue 13 §2). */
  session: string;
  /** A custom field definition of the organization's client requests (issue 14 §2). */
  customField: string;
  /** The owner's export of the channel (issue 14 §5). */
  export: string;
}
type Slot = keyof Ids;
const SLOT_TYPES: Record<Slot, string> = {
  channel: 'Channel',
  archivedChannel: 'Channel',
  openChannel: 'Channel',
  message: 'Message',
  user: 'User',
  client: 'User',
  deactivatedUser: 'User',
  project: 'Project',
  request: 'ClientRequest',
  ticket: 'SupportTicket',
  notification: 'Notification',
  apiKey: 'ApiKey',
  entityType: 'EntityType',
  attachment: 'Attachment',
  session: 'Session',
  customField: 'CustomFieldDefinition',
  export: 'Export',
};
/** A real type that is never the one a slot expects (nor one the audit trail has entries for). */
const WRONG_TYPE: Record<string, string> = {
  Channel: 'Attachment',
  User: 'Channel',
  Message: 'Notification',
  Project: 'Message',
  ClientRequest: 'Notification',
  SupportTicket: 'Message',
  Notification: 'Message',
  ApiKey: 'Channel',
  EntityType: 'Channel',
  Attachment: 'Channel',
  Session: 'Channel',
  CustomFieldDefinition: 'Channel',
  Export: 'Channel',
};

interface IdCase {
  /** What the case tries, for failure messages. */
  name: string;
  /** One root field; variables are named like its arguments, so coverage can be checked. */
  document: string;
  variables: (a: Ids, b: Ids) => Record<string, unknown>;
  /** The code for A's ids and for missing ones; NOT_FOUND unless the case says why. */
  code?: string;
  /** Integration operations are called with the organization's API key instead of its owner's token. */
  caller?: 'apiKey';
  /**
   * For fields that answer what the viewer cannot read with null instead of an
   * error (node, nodes): the data expected for A's, missing, malformed and
   * mistyped ids alike. `b` is null when the caller is A's owner, to whom B's ids are foreign.
   */
  data?: (b: Ids | null) => unknown;
}

const body = 'isolation probe';
const SLOTS = Object.keys(SLOT_TYPES) as Slot[];
const CASES: IdCase[] = [
  // Relay: node(id) for every kind of id, and nodes(ids) for all of them after one of B's own.
  ...SLOTS.map((slot): IdCase => ({
    name: `fetch a ${SLOT_TYPES[slot]} (${slot}) with node(id)`,
    document: `query($id: ID!) { node(id: $id) { id } }`,
    variables: (a) => ({ id: a[slot] }),
    data: () => ({ node: null }),
  })),
  {
    name: 'fetch every kind of id with nodes(ids)',
    document: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`,
    variables: (a, b) => ({ ids: [b.channel, ...SLOTS.map((slot) => a[slot])] }),
    data: (b) => ({ nodes: [b ? { id: b.channel } : null, ...SLOTS.map(() => null)] }),
  },
  // Queries
  { name: 'read a channel', document: `query($id: ID!) { channel(id: $id) { id } }`, variables: (a) => ({ id: a.channel }) },
  {
    name: 'list channels of a project',
    document: `query($filter: ChannelFilter) { channels(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { projectId: a.project } }),
  },
  { name: 'read a project', document: `query($id: ID!) { project(id: $id) { id } }`, variables: (a) => ({ id: a.project }) },
  { name: 'read a user', document: `query($id: ID!) { user(id: $id) { id } }`, variables: (a) => ({ id: a.user }) },
  { name: 'read a message', document: `query($id: ID!) { message(id: $id) { id } }`, variables: (a) => ({ id: a.message }) },
  // Messages
  {
    name: 'send to a channel',
    document: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`,
    variables: (a) => ({ input: { channelId: a.channel, body } }),
  },
  {
    name: 'send A\u2019s upload to B\u2019s channel',
    document: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`,
    variables: (a, b) => ({ input: { channelId: b.channel, body, attachmentIds: [a.attachment] } }),
  },
  {
    name: 'remove A\u2019s file',
    document: `mutation($id: ID!) { removeAttachment(id: $id) { removed } }`,
    variables: (a) => ({ id: a.attachment }),
  },
  {
    name: 'list the files of a channel',
    document: `query($id: ID!) { channel(id: $id) { attachments(first: 5) { edges { node { id } } } } }`,
    variables: (a) => ({ id: a.channel }),
  },
  {
    name: 'reply in B\u2019s channel to A\u2019s message',
    document: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`,
    variables: (a, b) => ({ input: { channelId: b.channel, body, parentId: a.message } }),
    // A parent outside the channel is invalid input, whether it is missing, in
    // another channel or in another organization: nothing tells them apart.
    code: 'BAD_USER_INPUT',
  },
  {
    name: 'edit a message',
    document: `mutation($input: EditMessageInput!) { editMessage(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.message, body } }),
  },
  {
    name: 'soft-delete a message',
    document: `mutation($input: DeleteMessageInput!) { deleteMessage(input: $input) { hard } }`,
    variables: (a) => ({ input: { id: a.message } }),
  },
  {
    name: 'hard-delete a message',
    document: `mutation($input: DeleteMessageInput!) { deleteMessage(input: $input) { hard } }`,
    variables: (a) => ({ input: { id: a.message, hard: true } }),
  },
  // Channels
  {
    name: 'add B\u2019s user to A\u2019s channel',
    document: `mutation($channelId: ID!, $userIds: [ID!]!) { addChannelMembers(channelId: $channelId, userIds: $userIds) { id } }`,
    variables: (a, b) => ({ channelId: a.channel, userIds: [b.user] }),
  },
  {
    name: 'add A\u2019s user to B\u2019s channel',
    document: `mutation($channelId: ID!, $userIds: [ID!]!) { addChannelMembers(channelId: $channelId, userIds: $userIds) { id } }`,
    variables: (a, b) => ({ channelId: b.channel, userIds: [b.user, a.user] }),
  },
  {
    name: 'remove A\u2019s member from A\u2019s channel',
    document: `mutation($channelId: ID!, $userId: ID!) { removeChannelMember(channelId: $channelId, userId: $userId) { id } }`,
    variables: (a) => ({ channelId: a.channel, userId: a.user }),
  },
  {
    name: 'remove A\u2019s user from B\u2019s channel',
    document: `mutation($channelId: ID!, $userId: ID!) { removeChannelMember(channelId: $channelId, userId: $userId) { id } }`,
    variables: (a, b) => ({ channelId: b.channel, userId: a.user }),
  },
  {
    // Run over HTTP like the rest: the subscription fails before it streams.
    name: 'subscribe to a channel\u2019s events',
    document: `subscription($channelId: ID!) { channelEvents(channelId: $channelId) { seq } }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  {
    name: 'set typing in a channel',
    document: `mutation($channelId: ID!) { setTyping(channelId: $channelId, typing: true) }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  {
    name: 'watch typing in a channel',
    document: `subscription($channelId: ID!) { typing(channelId: $channelId) { typing } }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  {
    name: 'read a user\u2019s presence',
    document: `query($userIds: [ID!]!) { presence(userIds: $userIds) { status } }`,
    variables: (a) => ({ userIds: [a.user] }),
  },
  {
    name: 'watch a user\u2019s presence',
    document: `subscription($userIds: [ID!]!) { presence(userIds: $userIds) { status } }`,
    variables: (a) => ({ userIds: [a.user] }),
  },
  {
    name: 'leave a channel',
    document: `mutation($channelId: ID!) { leaveChannel(channelId: $channelId) }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  {
    name: 'archive a channel',
    document: `mutation($channelId: ID!, $archived: Boolean) { archiveChannel(channelId: $channelId, archived: $archived) { id } }`,
    variables: (a) => ({ channelId: a.channel, archived: true }),
  },
  {
    name: 'reopen an archived channel',
    document: `mutation($channelId: ID!, $archived: Boolean) { archiveChannel(channelId: $channelId, archived: $archived) { id } }`,
    variables: (a) => ({ channelId: a.archivedChannel, archived: false }),
  },
  {
    name: 'mute a channel',
    document: `mutation($channelId: ID!) { muteChannel(channelId: $channelId) { muted } }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  {
    name: 'hide a channel',
    document: `mutation($channelId: ID!) { hideChannel(channelId: $channelId) { hidden } }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  {
    name: 'mark a channel read',
    document: `mutation($channelId: ID!, $seq: Int!) { markChannelRead(channelId: $channelId, seq: $seq) { lastReadSeq } }`,
    variables: (a) => ({ channelId: a.channel, seq: 1 }),
  },
  {
    name: 'open a DM with A\u2019s user',
    document: `mutation($userIds: [ID!]!) { openDirectChannel(userIds: $userIds) { id } }`,
    variables: (a) => ({ userIds: [a.user] }),
  },
  {
    name: 'open a group DM with B\u2019s and A\u2019s users',
    document: `mutation($userIds: [ID!]!) { openDirectChannel(userIds: $userIds) { id } }`,
    variables: (a, b) => ({ userIds: [b.user, a.user] }),
  },
  {
    name: 'create a channel with A\u2019s user',
    document: `mutation($input: CreateChannelInput!) { createChannel(input: $input) { id } }`,
    variables: (a, b) => ({ input: { kind: 'GROUP', name: `iso-${uid()}`, memberIds: [b.user, a.user] } }),
  },
  {
    name: 'create a channel in A\u2019s project',
    document: `mutation($input: CreateChannelInput!) { createChannel(input: $input) { id } }`,
    variables: (a) => ({ input: { kind: 'PROJECT', name: `iso-${uid()}`, projectId: a.project } }),
  },
  // Projects
  {
    name: 'grant B\u2019s client access to A\u2019s project',
    document: `mutation($input: GrantProjectAccessInput!) { grantProjectAccess(input: $input) { id } }`,
    variables: (a, b) => ({ input: { projectId: a.project, userId: b.client, role: 'CLIENT' } }),
  },
  {
    name: 'grant A\u2019s client access to B\u2019s project',
    document: `mutation($input: GrantProjectAccessInput!) { grantProjectAccess(input: $input) { id } }`,
    variables: (a, b) => ({ input: { projectId: b.project, userId: a.client, role: 'CLIENT' } }),
  },
  {
    name: 'revoke A\u2019s grant',
    document: `mutation($projectId: ID!, $userId: ID!) { revokeProjectAccess(projectId: $projectId, userId: $userId) }`,
    variables: (a) => ({ projectId: a.project, userId: a.client }),
  },
  {
    name: 'revoke A\u2019s user from B\u2019s project',
    document: `mutation($projectId: ID!, $userId: ID!) { revokeProjectAccess(projectId: $projectId, userId: $userId) }`,
    variables: (a, b) => ({ projectId: b.project, userId: a.client }),
  },
  // Client requests
  { name: 'read a request', document: `query($id: ID!) { clientRequest(id: $id) { id } }`, variables: (a) => ({ id: a.request }) },
  {
    name: 'list the requests of a project',
    document: `query($filter: ClientRequestFilter) { clientRequests(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { projectId: a.project } }),
  },
  {
    name: 'list the requests of a requester',
    document: `query($filter: ClientRequestFilter) { clientRequests(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { requesterId: a.client } }),
  },
  {
    name: 'count a project\u2019s requests',
    document: `query($projectId: ID!) { clientRequestCounts(projectId: $projectId) { count } }`,
    variables: (a) => ({ projectId: a.project }),
  },
  {
    name: 'file a request in a project',
    document: `mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { id } }`,
    variables: (a) => ({ input: { projectId: a.project, title: 't', description: 'd', type: 'MATERIAL' } }),
  },
  {
    name: 'file a request in B\u2019s project from A\u2019s message',
    document: `mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { id } }`,
    variables: (a, b) => ({ input: { projectId: b.project, title: 't', description: 'd', type: 'MATERIAL', fromMessageId: a.message } }),
  },
  {
    name: 'file a request in B\u2019s project with A\u2019s upload',
    document: `mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { id } }`,
    variables: (a, b) => ({
      input: { projectId: b.project, title: 't', description: 'd', type: 'MATERIAL', attachmentIds: [a.attachment] },
    }),
  },
  {
    name: 'add files to a request',
    document: `mutation($input: AddClientRequestAttachmentsInput!) { addClientRequestAttachments(input: $input) { id } }`,
    variables: (a, b) => ({ input: { clientRequestId: a.request, attachmentIds: [b.attachment] } }),
  },
  {
    name: 'add A\u2019s upload to B\u2019s request',
    document: `mutation($input: AddClientRequestAttachmentsInput!) { addClientRequestAttachments(input: $input) { id } }`,
    variables: (a, b) => ({ input: { clientRequestId: b.request, attachmentIds: [a.attachment] } }),
  },
  {
    name: 'edit a request',
    document: `mutation($input: UpdateClientRequestInput!) { updateClientRequest(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.request, title: 'changed' } }),
  },
  {
    name: 'withdraw a request',
    document: `mutation($input: WithdrawClientRequestInput!) { withdrawClientRequest(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.request } }),
  },
  {
    name: 'approve a request',
    document: `mutation($input: ApproveClientRequestInput!) { approveClientRequest(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.request } }),
  },
  {
    name: 'reject a request',
    document: `mutation($input: RejectClientRequestInput!) { rejectClientRequest(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.request, reason: 'no' } }),
  },
  {
    name: 'convert a request',
    document: `mutation($input: ConvertClientRequestInput!) { convertClientRequest(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.request } }),
  },
  // Support tickets
  { name: 'read a ticket', document: `query($id: ID!) { supportTicket(id: $id) { id } }`, variables: (a) => ({ id: a.ticket }) },
  {
    name: 'list the tickets of an assignee',
    document: `query($filter: SupportTicketFilter) { supportTickets(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { assigneeId: a.user } }),
  },
  {
    name: 'list the tickets of a requester',
    document: `query($filter: SupportTicketFilter) { supportTickets(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { requesterId: a.user } }),
  },
  {
    name: 'set a ticket\u2019s status',
    document: `mutation($input: SetSupportTicketStatusInput!) { setSupportTicketStatus(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket, status: 'PENDING_USER' } }),
  },
  {
    name: 'assign a ticket',
    document: `mutation($input: AssignSupportTicketInput!) { assignSupportTicket(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket } }),
  },
  {
    name: 'assign B\u2019s ticket to A\u2019s user',
    document: `mutation($input: AssignSupportTicketInput!) { assignSupportTicket(input: $input) { id } }`,
    variables: (a, b) => ({ input: { id: b.ticket, assigneeId: a.user } }),
  },
  {
    name: 'escalate a ticket',
    document: `mutation($input: EscalateSupportTicketInput!) { escalateSupportTicket(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket, reason: 'why' } }),
  },
  {
    name: 'resolve a ticket',
    document: `mutation($input: ResolveSupportTicketInput!) { resolveSupportTicket(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket, resolution: 'done' } }),
  },
  {
    name: 'reopen a ticket',
    document: `mutation($input: ReopenSupportTicketInput!) { reopenSupportTicket(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket } }),
  },
  {
    name: 'close a ticket',
    document: `mutation($input: CloseSupportTicketInput!) { closeSupportTicket(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket } }),
  },
  {
    name: 'change a ticket\u2019s priority',
    document: `mutation($input: ChangeSupportTicketPriorityInput!) { changeSupportTicketPriority(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket, priority: 'URGENT' } }),
  },
  {
    name: 'change a ticket\u2019s category',
    document: `mutation($input: ChangeSupportTicketCategoryInput!) { changeSupportTicketCategory(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket, category: 'BILLING' } }),
  },
  {
    name: 'rate a ticket',
    document: `mutation($input: RateSupportTicketInput!) { rateSupportTicket(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket, rating: 1 } }),
  },
  // Notifications and audit
  {
    name: 'mark a notification read',
    document: `mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }`,
    variables: (a) => ({ ids: [a.notification] }),
  },
  {
    name: 'read the audit trail of a request',
    document: `query($filter: AuditEventFilter) { auditEvents(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { targetId: a.request } }),
  },
  {
    name: 'read the audit trail of a channel',
    document: `query($filter: AuditEventFilter) { auditEvents(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { targetId: a.channel } }),
  },
  {
    name: 'read the audit trail of a message',
    document: `query($filter: AuditEventFilter) { auditEvents(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { targetId: a.message } }),
  },
  {
    name: 'read the audit trail of a user\u2019s actions',
    document: `query($filter: AuditEventFilter) { auditEvents(filter: $filter) { edges { node { id } } } }`,
    variables: (a) => ({ filter: { actorId: a.client } }),
  },
  // Users
  {
    name: 'change a user\u2019s role',
    document: `mutation($userId: ID!, $role: Role!) { changeUserRole(userId: $userId, role: $role) { id } }`,
    variables: (a) => ({ userId: a.user, role: 'ADMIN' }),
  },
  {
    name: 'deactivate a user',
    document: `mutation($userId: ID!) { deactivateUser(userId: $userId) { id } }`,
    variables: (a) => ({ userId: a.user }),
  },
  {
    name: 'reactivate a user',
    document: `mutation($userId: ID!) { reactivateUser(userId: $userId) { id } }`,
    variables: (a) => ({ userId: a.deactivatedUser }),
  },
  {
    name: 'erase a user',
    document: `mutation($userId: ID!) { eraseUser(userId: $userId) { id } }`,
    variables: (a) => ({ userId: a.user }),
  },
  // Mentions (issue 11 §1)
  {
    name: 'set a channel\u2019s notification level',
    document: `mutation($channelId: ID!) { setChannelNotificationLevel(channelId: $channelId, level: ALL) { notificationLevel } }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  // Entity links and API keys (issue 11 §2)
  // Sessions (issue 13 §2)
  {
    name: 'revoke a session',
    document: `mutation($id: ID!) { revokeSession(id: $id) }`,
    variables: (a) => ({ id: a.session }),
  },
  {
    name: 'revoke an API key',
    document: `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`,
    variables: (a) => ({ id: a.apiKey }),
  },
  {
    name: 'rename an entity type',
    document: `mutation($input: UpdateEntityTypeInput!) { updateEntityType(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.entityType, displayName: 'changed' } }),
  },
  {
    name: 'delete an entity type',
    document: `mutation($id: ID!) { deleteEntityType(id: $id) }`,
    variables: (a) => ({ id: a.entityType }),
  },
  {
    name: 'upsert an entity of A\u2019s project with B\u2019s API key',
    document: `mutation($entities: [LinkedEntityInput!]!) { upsertLinkedEntities(entities: $entities) { changed } }`,
    variables: (a) => ({ entities: [{ type: 'task', externalId: 'isolation', label: 'moved', projectId: a.project }] }),
    caller: 'apiKey',
  },
  {
    name: 'resolve a reference in a channel',
    document: `query($channelId: ID) { linkedEntity(type: "message", id: "1", channelId: $channelId) { label } }`,
    variables: (a) => ({ channelId: a.channel }),
    data: () => ({ linkedEntity: null }),
  },
  {
    name: 'list the messages linking a reference in a channel',
    document: `query($channelId: ID) { linkedMessages(type: "message", id: "1", channelId: $channelId) { edges { node { id } } } }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  // Search (issue 14 §1): the ids a filter names are read like any other.
  {
    name: 'search messages in a channel',
    document: `query($filter: MessageSearchFilter) { search(query: "isolation", filter: $filter) { edges { cursor } } }`,
    variables: (a, b) => ({ filter: { channelIds: [b.channel, a.channel] } }),
  },
  {
    name: 'search messages by a sender',
    document: `query($filter: MessageSearchFilter) { search(query: "isolation", filter: $filter) { edges { cursor } } }`,
    variables: (a) => ({ filter: { senderId: a.user } }),
  },
  {
    name: 'search messages in a thread',
    document: `query($filter: MessageSearchFilter) { search(query: "isolation", filter: $filter) { edges { cursor } } }`,
    variables: (a) => ({ filter: { threadId: a.message } }),
  },
  {
    name: 'list the messages linking a request of a project',
    document: `query($projectId: ID) { linkedMessages(type: "request", id: "1", projectId: $projectId) { edges { node { id } } } }`,
    variables: (a) => ({ projectId: a.project }),
  },
  // Reactions and pins (issue 11 §3, §4)
  {
    name: 'react to a message',
    document: `mutation($messageId: ID!, $emoji: String!) { addReaction(messageId: $messageId, emoji: $emoji) { id } }`,
    variables: (a) => ({ messageId: a.message, emoji: '\u{1F440}' }),
  },
  {
    name: 'remove a reaction from a message',
    document: `mutation($messageId: ID!, $emoji: String!) { removeReaction(messageId: $messageId, emoji: $emoji) { id } }`,
    variables: (a) => ({ messageId: a.message, emoji: '\u{1F44D}' }),
  },
  {
    name: 'pin a message',
    document: `mutation($messageId: ID!) { pinMessage(messageId: $messageId) { id } }`,
    variables: (a) => ({ messageId: a.message }),
  },
  {
    name: 'unpin a message',
    document: `mutation($messageId: ID!) { unpinMessage(messageId: $messageId) { id } }`,
    variables: (a) => ({ messageId: a.message }),
  },
  // Exports (issue 14 §5)
  {
    name: 'export a channel',
    document: `mutation($channelId: ID!) { exportChannel(channelId: $channelId, format: JSON) { id } }`,
    variables: (a) => ({ channelId: a.channel }),
  },
  { name: 'read an export', document: `query($id: ID!) { export(id: $id) { id } }`, variables: (a) => ({ id: a.export }) },
  // Delivery and read state (issue 11 §5)
  {
    name: 'mark a channel delivered',
    document: `mutation($channelId: ID!, $seq: Int!) { markChannelDelivered(channelId: $channelId, seq: $seq) { lastDeliveredSeq } }`,
    variables: (a) => ({ channelId: a.channel, seq: 1 }),
  },
  {
    name: 'mark a channel unread',
    document: `mutation($channelId: ID!, $seq: Int!) { markChannelUnread(channelId: $channelId, seq: $seq) { lastReadSeq } }`,
    variables: (a) => ({ channelId: a.channel, seq: 1 }),
  },
  // Channels people can find (issue 11 §6)
  {
    name: 'update a channel',
    document: `mutation($input: UpdateChannelInput!) { updateChannel(input: $input) { id } }`,
    variables: (a) => ({ input: { channelId: a.channel, topic: 'isolation probe', visibility: 'PRIVATE' } }),
  },
  {
    name: 'unarchive a channel',
    document: `mutation($channelId: ID!) { unarchiveChannel(channelId: $channelId) { id } }`,
    variables: (a) => ({ channelId: a.archivedChannel }),
  },
  // Custom fields (issue 14 §2)
  {
    name: 'change a custom field definition',
    document: `mutation($input: UpdateCustomFieldDefinitionInput!) { updateCustomFieldDefinition(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.customField, label: 'changed', max: 1 } }),
  },
  {
    name: 'archive a custom field definition',
    document: `mutation($id: ID!) { archiveCustomFieldDefinition(id: $id) { id } }`,
    variables: (a) => ({ id: a.customField }),
  },
  {
    name: 'set a request\u2019s custom fields',
    document: `mutation($input: UpdateClientRequestFieldsInput!) { updateClientRequestFields(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.request, customFields: { budget: 1 } } }),
  },
  {
    name: 'set a ticket\u2019s custom fields',
    document: `mutation($input: UpdateSupportTicketFieldsInput!) { updateSupportTicketFields(input: $input) { id } }`,
    variables: (a) => ({ input: { id: a.ticket, customFields: { budget: 1 } } }),
  },
  {
    name: 'join an open channel',
    document: `mutation($channelId: ID!) { joinChannel(channelId: $channelId) { id } }`,
    variables: (a) => ({ channelId: a.openChannel }),
  },
];

interface NoIdOperation {
  field: string;
  reason: string;
  /** How to call it; absent for operations open to anonymous callers. */
  document?: string;
  variables?: () => Record<string, unknown>;
}

const NO_ID: NoIdOperation[] = [
  { field: 'viewer', reason: 'the viewer comes from the token', document: `{ viewer { id } }` },
  { field: 'users', reason: 'lists the caller\u2019s organization only', document: `{ users { edges { node { id } } } }` },
  { field: 'projects', reason: 'lists the caller\u2019s organization only', document: `{ projects { edges { node { id } } } }` },
  {
    field: 'createProject',
    reason: 'creates in the caller\u2019s organization',
    document: `mutation($input: CreateProjectInput!) { createProject(input: $input) { id } }`,
    variables: () => ({ input: { name: `iso-${uid()}` } }),
  },
  {
    field: 'createUser',
    reason: 'creates in the caller\u2019s organization',
    document: `mutation($input: CreateUserInput!) { createUser(input: $input) { id } }`,
    variables: () => ({ input: { username: `iso-${uid()}`, displayName: 'Iso', role: 'MEMBER', password: 'password123' } }),
  },
  {
    field: 'viewerEvents',
    reason: 'the viewer\u2019s own stream: channels come from their memberships',
    document: `subscription { viewerEvents { __typename } }`,
  },
  {
    field: 'setPresence',
    reason: 'sets the caller\u2019s own presence',
    document: `mutation { setPresence(status: AWAY) { status } }`,
  },
  { field: 'notifications', reason: 'the viewer\u2019s own notifications', document: `{ notifications { edges { node { id } } } }` },
  { field: 'exports', reason: 'the viewer\u2019s own exports', document: `{ exports(first: 5) { edges { node { id } } } }` },
  {
    field: 'searchClientRequests',
    reason: 'searches what the caller may read in their own organization',
    document: `{ searchClientRequests(query: "isolation") { edges { cursor } } }`,
  },
  {
    field: 'searchSupportTickets',
    reason: 'searches what the caller may read in their own organization',
    document: `{ searchSupportTickets(query: "isolation") { edges { cursor } } }`,
  },

  {
    field: 'exportOrganization',
    reason: 'exports the caller\u2019s organization',
    document: `mutation { exportOrganization { id } }`,
  },
  { field: 'unreadNotificationCount', reason: 'the viewer\u2019s own notifications', document: `{ unreadNotificationCount }` },
  {
    field: 'supportTicketCounts',
    reason: 'counts the caller\u2019s organization\u2019s (or own) tickets',
    document: `{ supportTicketCounts { count } }`,
  },
  { field: 'slaTargets', reason: 'the caller\u2019s organization\u2019s targets', document: `{ slaTargets { priority } }` },
  {
    field: 'setSlaTarget',
    reason: 'sets the caller\u2019s organization\u2019s targets',
    document: `mutation { setSlaTarget(input: { priority: LOW, firstResponseMinutes: 1440, resolutionMinutes: 7200 }) { priority } }`,
  },
  {
    field: 'updateOrganizationSettings',
    reason: 'changes the caller\u2019s organization\u2019s settings',
    document: `mutation { updateOrganizationSettings(input: {}) { id } }`,
  },
  {
    field: 'openSupportTicket',
    reason: 'opens a ticket in the caller\u2019s organization',
    document: `mutation { openSupportTicket(input: { subject: "s", category: OTHER, priority: LOW, message: "m" }) { id } }`,
  },
  // Mentions (issue 11 §1)
  {
    field: 'mentions',
    reason: 'the viewer\u2019s own mentions, in channels they read',
    document: `{ mentions(first: 5) { edges { node { id } } } }`,
  },
  // Entity links and API keys (issue 11 §2)
  { field: 'apiKeys', reason: 'lists the caller\u2019s organization\u2019s keys', document: `{ apiKeys { edges { node { id } } } }` },
  {
    field: 'createApiKey',
    reason: 'creates in the caller\u2019s organization',
    document: `mutation { createApiKey(name: "iso") { secret } }`,
  },
  { field: 'entityTypes', reason: 'lists the caller\u2019s organization\u2019s types', document: `{ entityTypes { key } }` },
  {
    field: 'createEntityType',
    reason: 'creates in the caller\u2019s organization',
    document: `mutation { createEntityType(input: { key: "iso", displayName: "Iso" }) { id } }`,
  },
  {
    field: 'deleteLinkedEntities',
    reason:
      'deletes the API key\u2019s organization\u2019s entities by type key and external id (entity-links.test.ts checks another organization\u2019s key deletes none)',
    document: `mutation { deleteLinkedEntities(refs: [{ type: "task", externalId: "isolation" }]) }`,
  },
  // Channels people can find (issue 11 §6)
  {
    field: 'browseChannels',
    reason: 'lists the caller\u2019s organization only',
    document: `{ browseChannels { edges { node { id } } } }`,
  },
  {
    field: 'uploadFile',
    reason: 'stores a file (a multipart request) as the caller\u2019s own upload in the caller\u2019s organization',
  },
  { field: 'login', reason: 'public: names the organization by slug, takes no id' },
  // Sessions (issue 13 §2)
  { field: 'sessions', reason: 'the viewer\u2019s own sessions', document: `{ sessions { edges { node { id } } } }` },
  { field: 'logout', reason: 'ends the session the caller\u2019s token names', document: `mutation { logout }` },
  { field: 'logoutEverywhere', reason: 'ends the caller\u2019s own sessions', document: `mutation { logoutEverywhere }` },
  {
    field: 'changePassword',
    reason: 'changes the caller\u2019s own password',
    document: `mutation { changePassword(currentPassword: "password123", newPassword: "isolation probe") }`,
  },
  {
    field: 'refreshSession',
    reason: 'public: the refresh token names the session (sessions.test.ts checks another session\u2019s or an unknown token alike)',
  },
  { field: 'registerOrganization', reason: 'public: creates a new organization' },
  // Custom fields (issue 14 §2)
  {
    field: 'customFieldDefinitions',
    reason: 'lists the caller\u2019s organization\u2019s definitions',
    document: `{ customFieldDefinitions(entity: CLIENT_REQUEST) { key } }`,
  },
  {
    field: 'createCustomFieldDefinition',
    reason: 'creates in the caller\u2019s organization',
    document: `mutation { createCustomFieldDefinition(input: { entity: MESSAGE, key: "iso", label: "Iso", type: TEXT }) { id } }`,
  },
];

/** The root field a document calls. */
function rootField(document: string): string {
  const operation = parse(document).definitions[0] as OperationDefinitionNode;
  const selection = operation.selectionSet.selections[0];
  if (selection?.kind !== 'Field') throw new Error(`no root field in ${document}`);
  return selection.name.value;
}

const encode = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
const mapIds = (f: (slot: Slot) => string): Ids =>
  Object.fromEntries((Object.keys(SLOT_TYPES) as Slot[]).map((slot) => [slot, f(slot)])) as unknown as Ids;

let s: TestServer;
let A: TestOrg;
let B: TestOrg;
let a: Ids;
let b: Ids;
let aMember: { token: string };
/** Each organization's API key, for integration operations. */
const apiKeys = new Map<TestOrg, string>();
/** What a case calls with as `org`'s admin: its owner's token, or its API key for integration operations. */
const callerOf = (c: IdCase, org: TestOrg): string => (c.caller === 'apiKey' ? apiKeys.get(org)! : org.owner.token);
/** Both organizations as they were before any cross-organization call. */
let initial: Awaited<ReturnType<typeof bothSnapshots>>;

beforeAll(async () => {
  s = await startServer();
  [A, B] = await Promise.all([registerOrg(s), registerOrg(s)]);
  const world = async (org: TestOrg) => {
    const [user, client, deactivated] = await Promise.all([createUser(s, org), createUser(s, org, 'CLIENT'), createUser(s, org)]);
    const project = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, project, client.id, 'CLIENT');
    const channel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, memberIds: [user.id, client.id] });
    const archivedChannel = await createChannel(s, org.owner.token, { memberIds: [user.id] });
    const openChannel = ok(
      await s.gql(
        `mutation($input: CreateChannelInput!) { createChannel(input: $input) { id } }`,
        { input: { kind: 'GROUP', name: `open-${uid()}`, visibility: 'PUBLIC' } },
        org.owner.token,
      ),
    ).createChannel.id as string;
    const message = await send(s, user.token, channel, 'the original body');
    // A reaction and a pin for removeReaction and unpinMessage to try to take away.
    ok(await s.gql(`mutation($m: ID!) { addReaction(messageId: $m, emoji: "\u{1F44D}") { id } }`, { m: message.id }, user.token));
    ok(await s.gql(`mutation($m: ID!) { pinMessage(messageId: $m) { id } }`, { m: message.id }, org.owner.token));
    ok(await s.gql(`mutation($c: ID!) { archiveChannel(channelId: $c) { id } }`, { c: archivedChannel }, org.owner.token));
    ok(await s.gql(`mutation($u: ID!) { deactivateUser(userId: $u) { id } }`, { u: deactivated.id }, org.owner.token));
    const request = ok(
      await s.gql(
        `mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { id } }`,
        {
          input: { projectId: project, title: 'Bricks', description: '500 bricks', type: 'MATERIAL' },
        },
        client.token,
      ),
    ).createClientRequest.id;
    const ticket = ok(
      await s.gql(
        `mutation { openSupportTicket(input: { subject: "Help", category: TECHNICAL, priority: HIGH, message: "It broke" }) { id } }`,
        {},
        user.token,
      ),
    ).openSupportTicket.id;
    ok(
      await s.gql(
        `mutation($id: ID!) { setSupportTicketStatus(input: { id: $id, status: IN_PROGRESS }) { id } }`,
        { id: ticket },
        org.owner.token,
      ),
    );
    const notification = ok(await s.gql(`{ notifications(first: 1) { edges { node { id } } } }`, {}, user.token)).notifications.edges[0]
      .node.id;
    const apiKey = ok(
      await s.gql(`mutation { createApiKey(name: "isolation") { secret apiKey { id } } }`, {}, org.owner.token),
    ).createApiKey;
    const entityType = ok(
      await s.gql(
        `mutation { createEntityType(input: { key: "task", displayName: "Task", urlTemplate: "https://erp.example.com/{id}" }) { id } }`,
        {},
        org.owner.token,
      ),
    ).createEntityType.id;
    ok(
      await s.gql(
        `mutation($p: ID) { upsertLinkedEntities(entities: [{ type: "task", externalId: "isolation", label: "Isolation task", projectId: $p }]) { changed } }`,
        { p: project },
        apiKey.secret,
      ),
    );
    const attachment = ok(await uploadFile(s.url, org.owner.token, { name: 'isolation.txt', bytes: Buffer.from('isolation probe\n') }))
      .uploadFile.id;
    const session = ok(await s.gql(`{ sessions { edges { node { id current } } } }`, {}, org.owner.token)).sessions.edges.find(
      (e: { node: { current: boolean } }) => e.node.current,
    ).node.id as string;
    const exported = ok(
      await s.gql(`mutation($c: ID!) { exportChannel(channelId: $c, format: JSON) { id } }`, { c: channel }, org.owner.token),
    ).exportChannel.id as string;
    const customField = ok(
      await s.gql(
        `mutation { createCustomFieldDefinition(input: { entity: CLIENT_REQUEST, key: "budget", label: "Budget", type: NUMBER }) { id } }`,
        {},
        org.owner.token,
      ),
    ).createCustomFieldDefinition.id as string;
    const ids: Ids = {
      channel,
      archivedChannel,
      openChannel,
      message: message.id,
      user: user.id,
      client: client.id,
      deactivatedUser: deactivated.id,
      project,
      request,
      ticket,
      notification,
      apiKey: apiKey.apiKey.id,
      entityType,
      attachment,
      session,
      customField,
      export: exported,
    };
    return { ids, user, apiKeySecret: apiKey.secret as string };
  };
  const [worldA, worldB] = await Promise.all([world(A), world(B)]);
  a = worldA.ids;
  b = worldB.ids;
  aMember = worldA.user;
  apiKeys.set(A, worldA.apiKeySecret).set(B, worldB.apiKeySecret);
  initial = await bothSnapshots();
});
afterAll(async () => {
  await s?.stop();
});

const SNAPSHOT = graphql(`
  query IsolationSnapshot($channel: ID!, $archived: ID!, $message: ID!, $project: ID!, $request: ID!, $ticket: ID!) {
    channel(id: $channel) {
      name
      topic
      archived
      lastSeq
      members(first: 20) {
        edges {
          node {
            role
            lastReadSeq
            lastDeliveredSeq
            mutedUntil
            hidden
            user {
              id
            }
          }
        }
      }
    }
    archived: channel(id: $archived) {
      archived
      lastSeq
    }
    message(id: $message) {
      body
      deleted
      editedAt
      pinned
      reactions {
        emoji
        count
      }
    }
    project(id: $project) {
      name
      access(first: 20) {
        edges {
          node {
            role
            canComment
            user {
              id
            }
          }
        }
      }
    }
    users(first: 50) {
      edges {
        node {
          id
          role
          deactivated
        }
      }
    }
    channels(first: 50) {
      edges {
        node {
          id
        }
      }
    }
    projects(first: 50) {
      edges {
        node {
          id
        }
      }
    }
    clientRequest(id: $request) {
      status
      title
      description
      type
      decisionNote
      changeOrder {
        id
      }
      updatedAt
    }
    supportTicket(id: $ticket) {
      status
      priority
      category
      assignee {
        id
      }
      rating
      resolution
      escalationReason
      updatedAt
    }
    clientRequests(first: 50) {
      edges {
        node {
          id
        }
      }
    }
    supportTickets(first: 50) {
      edges {
        node {
          id
        }
      }
    }
    slaTargets {
      priority
      firstResponseMinutes
      resolutionMinutes
    }
    apiKeys(first: 20) {
      edges {
        node {
          id
          name
          revoked
        }
      }
    }
    entityTypes {
      key
      displayName
      urlTemplate
    }
    linkedEntity(type: "task", id: "isolation") {
      label
      url
    }
    sessions(first: 20) {
      edges {
        node {
          id
          expiresAt
        }
      }
    }
  }
`);

const MEMBER_SNAPSHOT = graphql(`
  query IsolationMemberSnapshot {
    channels(first: 50) {
      edges {
        node {
          id
        }
      }
    }
    notifications(first: 50) {
      edges {
        node {
          id
          read
        }
      }
    }
  }
`);

/** Everything a stray cross-organization call could change, as the organization's owner (and a member) see it. */
async function snapshot(org: TestOrg, ids: Ids, memberToken?: string) {
  const vars = {
    channel: ids.channel,
    archived: ids.archivedChannel,
    message: ids.message,
    project: ids.project,
    request: ids.request,
    ticket: ids.ticket,
  };
  const data = ok(await s.gql(SNAPSHOT, vars, org.owner.token));
  const member = memberToken ? ok(await s.gql(MEMBER_SNAPSHOT, {}, memberToken)) : null;
  // Custom fields (issue 14 §2): the definitions and the values a stray call could change.
  const customFields = ok(
    await s.gql(
      `query($r: ID!, $t: ID!) {
        customFieldDefinitions(entity: CLIENT_REQUEST, includeArchived: true) { key label max archived updatedAt }
        clientRequest(id: $r) { customFields }
        supportTicket(id: $t) { customFields }
      }`,
      { r: ids.request, t: ids.ticket },
      org.owner.token,
    ),
  );
  return { ...data, member, customFields };
}

async function bothSnapshots() {
  return { a: await snapshot(A, a, aMember.token), b: await snapshot(B, b) };
}

describe('isolation: coverage of schema.graphql', () => {
  const schema = buildSchema(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8'));
  const roots = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((type) =>
    type ? Object.values(type.getFields()) : [],
  );

  /** Paths of every ID argument, through input objects: `input.channelId`. */
  function idPaths(args: readonly (GraphQLArgument | GraphQLInputField)[], prefix = '', depth = 0): string[] {
    if (depth > 5) return [];
    return args.flatMap((arg) => {
      const type = getNamedType(arg.type);
      if (type.name === 'ID') return [`${prefix}${arg.name}`];
      if (isInputObjectType(type)) return idPaths(Object.values(type.getFields()), `${prefix}${arg.name}.`, depth + 1);
      return [];
    });
  }

  /** Paths in a case's variables that hold one of A's ids: what the case really points at another organization. */
  function foreignPaths(value: unknown, prefix = ''): string[] {
    const foreign = new Set(Object.values(a));
    if (typeof value === 'string') return foreign.has(value) ? [prefix.slice(0, -1)] : [];
    if (Array.isArray(value)) return [...new Set(value.flatMap((v) => foreignPaths(v, prefix)))];
    if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => foreignPaths(v, `${prefix}${k}.`));
    return [];
  }

  it('every root operation with an id argument has a case for each of its id arguments', () => {
    const covered = new Set(CASES.flatMap((c) => foreignPaths(c.variables(a, b)).map((p) => `${rootField(c.document)}.${p}`)));
    const required = roots.flatMap((field) => idPaths(field.args).map((p) => `${field.name}.${p}`));
    expect(
      required.filter((p) => !covered.has(p)),
      'id arguments with no isolation case',
    ).toEqual([]);
    expect(
      [...covered].filter((p) => !required.includes(p)),
      'cases that point at no id argument of the schema',
    ).toEqual([]);
  });

  it('every root operation without an id argument is listed as no-id, with a reason', () => {
    const withoutIds = roots.filter((field) => idPaths(field.args).length === 0).map((field) => field.name);
    expect(NO_ID.map((op) => op.field).sort()).toEqual(withoutIds.sort());
    for (const op of NO_ID) expect(op.reason.length).toBeGreaterThan(0);
  });
});

describe('isolation: another organization\u2019s ids', () => {
  it.each(CASES.map((c) => [c.name, c] as const))(
    '%s: NOT_FOUND (or null), exactly like a missing id, and nothing changes',
    async (_name, c) => {
      const foreign = await s.gql(c.document, c.variables(a, b), callerOf(c, B));
      const ghost = mapIds((slot) => encode(SLOT_TYPES[slot], randomUUID()));
      const missing = await s.gql(c.document, c.variables(ghost, b), callerOf(c, B));
      if (c.data) {
        expect(foreign, 'null for a foreign id').toEqual({ data: c.data(b) });
        expect(missing, 'null for a missing id').toEqual({ data: c.data(b) });
        expect(await bothSnapshots()).toEqual(initial);
        return;
      }
      expect(errorCode(foreign), JSON.stringify(foreign)).toBe(c.code ?? 'NOT_FOUND');
      expect(foreign.data ?? null, 'no data for a foreign id').toBeNull();
      expect({ code: errorCode(foreign), message: foreign.errors?.[0]?.message }).toEqual({
        code: errorCode(missing),
        message: missing.errors?.[0]?.message,
      });
      expect(await bothSnapshots()).toEqual(initial);
    },
  );

  it('A\u2019s data is still what A made', async () => {
    const { a: view } = await bothSnapshots();
    expect(view.message).toEqual({
      body: 'the original body',
      deleted: false,
      editedAt: null,
      pinned: true,
      reactions: [{ emoji: '\u{1F44D}', count: 1 }],
    });
    expect(view.channel?.archived).toBe(false);
    expect(view.archived?.archived).toBe(true);
    expect(view.channel!.members.edges.map((e) => e.node.user.id)).toEqual(expect.arrayContaining([a.user, a.client]));
    expect(view.project!.access.edges.map((e) => e.node.user.id)).toEqual([a.client]);
    const roles = Object.fromEntries(view.users.edges.map((e) => [e.node.id, e.node]));
    expect(roles[a.user]).toMatchObject({ role: 'MEMBER', deactivated: false });
    expect(roles[a.deactivatedUser]).toMatchObject({ deactivated: true });
  });
});

describe('isolation: malformed and mistyped ids', () => {
  const malformed: [string, (slot: Slot) => string][] = [
    ['not base64 of a global id', () => 'not-a-global-id'],
    ['empty', () => ''],
    ['right type, not a uuid', (slot) => encode(SLOT_TYPES[slot], 'not-a-uuid')],
    ['no type', (slot) => Buffer.from(rawId(a[slot])).toString('base64')],
  ];

  it.each(CASES.map((c) => [c.name, c] as const))('%s: a malformed id is BAD_USER_INPUT or NOT_FOUND (or null)', async (_name, c) => {
    for (const [label, make] of malformed) {
      const result = await s.gql(c.document, c.variables(mapIds(make), b), callerOf(c, B));
      if (c.data) {
        expect(result, label).toEqual({ data: c.data(b) });
        continue;
      }
      expect(['BAD_USER_INPUT', 'NOT_FOUND'], `${label}: ${JSON.stringify(result.errors)}`).toContain(errorCode(result));
    }
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s: an id of another type is BAD_USER_INPUT (or null)', async (_name, c) => {
    // A's own ids, re-labelled with a wrong type: checked as B's owner and as A's owner alike.
    const mistyped = mapIds((slot) => encode(WRONG_TYPE[SLOT_TYPES[slot]]!, rawId(a[slot])));
    for (const token of [callerOf(c, B), callerOf(c, A)]) {
      const result = await s.gql(c.document, c.variables(mistyped, b), token);
      if (c.data) {
        expect(result).toEqual({ data: c.data(token === callerOf(c, B) ? b : null) });
        continue;
      }
      expect(errorCode(result), JSON.stringify(result.errors)).toBe('BAD_USER_INPUT');
    }
  });
});

describe('isolation: authentication', () => {
  const anonymous = [
    ...CASES.map((c) => ({ name: c.name, document: c.document, variables: () => c.variables(a, b) })),
    ...NO_ID.filter((op) => op.document).map((op) => ({ name: op.field, document: op.document!, variables: op.variables ?? (() => ({})) })),
  ];

  it.each(anonymous.map((op) => [op.name, op] as const))('%s: UNAUTHENTICATED without a valid token', async (_name, op) => {
    for (const token of [null, 'not-a-token']) {
      const result = await s.gql(op.document, op.variables(), token);
      expect(errorCode(result), JSON.stringify(result.errors)).toBe('UNAUTHENTICATED');
    }
  });
});

describe('isolation: afterwards', () => {
  it('nothing changed in either organization after all the calls above', async () => {
    expect(await bothSnapshots()).toEqual(initial);
  });
});
