import type { ItemAction } from '../bus/events.ts';
import type { Viewer } from './viewer.ts';
import {
  ClientRequestStatus,
  Prisma,
  type ChangeOrder,
  type ClientRequest,
  type ClientRequestType,
  type PrismaClient,
} from '../generated/prisma/client.ts';
import { changedKeys, idsWithCustomFields, type CustomFieldCheck } from './custom-fields.ts';
import { assertId, isExternal, isStaff, readableClientRequestWhere } from './access.ts';
import type { ChannelLog, LogWriter } from './channel-log.ts';
import type { Clock } from './clock.ts';
import type { Tx } from '../db/tx.ts';
import { forbidden, notFound } from './errors.ts';
import { openItemChannel } from './item-log.ts';
import type { MessageService } from './messages.ts';
import type { NotificationService } from './notifications.ts';
import type { UserService } from './users.ts';
import { Workflow, type Change, type ItemRules, type Move } from './workflow.ts';

/** Every status, in the order the database enum declares them. */
export const REQUEST_STATUSES = Object.values(ClientRequestStatus);

export interface CreateClientRequestInput {
  projectId: string;
  title: string;
  description: string;
  type: ClientRequestType;
  fromMessageId?: string | null;
  idempotencyKey?: string | null;
  /** Uploads of the requester's to attach, in this order (request-attachments.ts). */
  attachmentIds?: readonly string[] | null;
  /** Checked against the organization's CLIENT_REQUEST custom field definitions. */
  customFields?: unknown;
}

/** What filing a request with files needs of RequestAttachmentService (request-attachments.ts), which needs this service in turn. */
export interface RequestFiles {
  /** attachable()'s errors, before the transaction. */
  check(viewer: Viewer, ids: readonly string[]): Promise<void>;
  /** Attaches the uploads to the request and appends ATTACHMENT_ADDED, in the caller's transaction. */
  attach(tx: Tx, log: LogWriter, viewer: Viewer, request: ClientRequest, ids: readonly string[]): Promise<void>;
  /** After the transaction failed: the error to report. */
  rethrow(viewer: Viewer, ids: readonly string[], error: unknown): Promise<never>;
}

export interface UpdateClientRequestInput {
  title?: string | null;
  description?: string | null;
  type?: ClientRequestType | null;
  idempotencyKey?: string | null;
}

export interface ClientRequestFilter {
  projectId?: string | null;
  status?: ClientRequestStatus | null;
  type?: ClientRequestType | null;
  requesterId?: string | null;
  /** Only requests whose customFields contain this object (GIN-indexed containment). */
  customFields?: unknown;
}

type Query = { select?: Prisma.ClientRequestSelect; include?: Prisma.ClientRequestInclude };
type Data = Prisma.ClientRequestUncheckedUpdateInput;

/**
 * The status machine: a pending request is approved, rejected, converted or
 * withdrawn; an approved one may still be converted; the rest are final.
 */
export const REQUEST_MACHINE: Record<ClientRequestStatus, ClientRequestStatus[]> = {
  PENDING: ['APPROVED', 'REJECTED', 'CONVERTED', 'WITHDRAWN'],
  APPROVED: ['CONVERTED'],
  REJECTED: [],
  CONVERTED: [],
  WITHDRAWN: [],
};

/** The changes of a request: its requester edits or withdraws it while it is pending; staff decide. */
export const REQUEST_MOVES = {
  edit: { operation: 'updateClientRequest', action: 'EDITED', who: 'requester', from: ['PENDING'], to: 'PENDING' },
  withdraw: { operation: 'withdrawClientRequest', action: 'WITHDRAWN', who: 'requester', to: 'WITHDRAWN' },
  approve: { operation: 'approveClientRequest', action: 'APPROVED', who: 'staff', to: 'APPROVED' },
  reject: { operation: 'rejectClientRequest', action: 'REJECTED', who: 'staff', to: 'REJECTED' },
  convert: { operation: 'convertClientRequest', action: 'CONVERTED', who: 'staff', to: 'CONVERTED' },
  // Custom fields: the requester while it is pending (as edit), staff whatever its status.
  fields: { operation: 'updateClientRequestFields', action: 'FIELDS_CHANGED', who: 'requester', from: ['PENDING'], to: 'PENDING' },
  staffFields: {
    operation: 'updateClientRequestFields',
    action: 'FIELDS_CHANGED',
    who: 'staff',
    to: (status: ClientRequestStatus) => status,
    from: REQUEST_STATUSES,
  },
} satisfies Record<string, Move<ClientRequestStatus, 'staff' | 'requester', ItemAction<'CLIENT_REQUEST'>>>;

/** A staff decision records its decider, its time and its note. */
const decision = (viewer: Viewer, note: string | null): Change<ClientRequest, Data> => ({
  reason: note,
  data: (now) => ({ decidedById: viewer.id, decidedAt: now, decisionNote: note ?? null }),
});

/**
 * Who may do what with a project's requests:
 * - staff (OWNER, ADMIN, STAFF): everything, in every project;
 * - MEMBER: read every project's requests (the issue is silent; members are
 *   the team, not the client, and decide nothing);
 * - external users: read the requests of projects they have access to; file
 *   them and edit or withdraw their own pending ones with CLIENT or
 *   EXTERNAL_PM access, not with VIEWER access.
 */
type Standing = 'staff' | 'member' | 'client' | 'viewer';

/**
 * Client requests: what a client asks of a project (material, a change order,
 * information), with its own conversation, and the decision on it.
 */
export class ClientRequestService {
  private readonly flow: Workflow<'CLIENT_REQUEST', ClientRequest, 'staff' | 'requester', Data, keyof typeof REQUEST_MOVES>;
  private files: RequestFiles | null = null;
  private customFields: CustomFieldCheck | null = null;

  constructor(
    private readonly prisma: PrismaClient,
    channelLog: ChannelLog,
    notifications: NotificationService,
    private readonly messages: MessageService,
    private readonly users: UserService,
    clock: Clock,
  ) {
    const rules = {
      item: 'CLIENT_REQUEST',
      table: 'ClientRequest',
      machine: REQUEST_MACHINE,
      get: (viewer, id) => this.get(viewer, id),
      authorize: (viewer, who, request) => this.authorize(viewer, who, request),
      refusal: (status, _to, action) => `The request is ${status}; it cannot be ${action.toLowerCase()}`,
      // A decider joins the conversation.
      actorJoins: (_viewer, who) => who === 'staff',
      write: (tx, id, status, data) => tx.clientRequest.update({ where: { id }, data: { status, ...data } }),
      reload: (id) => this.prisma.clientRequest.findUniqueOrThrow({ where: { id } }),
      notice: (request) => ({
        type: 'CLIENT_REQUEST_STATUS',
        requestId: request.id,
        data: { number: request.number, title: request.title },
      }),
    } satisfies ItemRules<'CLIENT_REQUEST', ClientRequest, 'staff' | 'requester', Data>;
    this.flow = new Workflow({ prisma, channelLog, notifications, clock }, rules, REQUEST_MOVES);
  }

  /** Checks requests' customFields against the organization's definitions (wiring: once per app). */
  useCustomFields(check: CustomFieldCheck): void {
    this.customFields = check;
  }

  private get fieldCheck(): CustomFieldCheck {
    if (!this.customFields) throw new Error('ClientRequestService.useCustomFields was not called');
    return this.customFields;
  }

  /** Lets requests be filed with files (wiring: once per app). */
  useFiles(files: RequestFiles): void {
    this.files = files;
  }

  /** Requests the viewer may read: their organization's, only granted projects' for external users. */
  visibleWhere(viewer: Viewer): Prisma.ClientRequestWhereInput {
    return readableClientRequestWhere(viewer);
  }

  async get(viewer: Viewer, id: string, query: Query = {}): Promise<ClientRequest> {
    assertId(id, 'Client request');
    const request = await this.prisma.clientRequest.findFirst({ ...query, where: { id, ...this.visibleWhere(viewer) } });
    if (!request) throw notFound('Client request');
    return request as ClientRequest;
  }

  async listWhere(viewer: Viewer, filter: ClientRequestFilter): Promise<Prisma.ClientRequestWhereInput> {
    if (filter.projectId) await this.standing(viewer, filter.projectId);
    // A requester the viewer cannot see is NOT_FOUND, as user(id) says.
    if (filter.requesterId) await this.users.visibleIds(viewer, [filter.requesterId]);
    const matching =
      filter.customFields == null
        ? null
        : await idsWithCustomFields(this.prisma, viewer.organizationId, 'CLIENT_REQUEST', filter.customFields);
    const where: Prisma.ClientRequestWhereInput = {
      ...this.visibleWhere(viewer),
      ...(filter.projectId ? { projectId: filter.projectId } : {}),
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.type ? { type: filter.type } : {}),
      ...(filter.requesterId ? { requesterId: filter.requesterId } : {}),
    };
    return matching ? { AND: [where, { id: { in: matching } }] } : where;
  }

  /** How many of a project's requests are in each status (every status listed, zeros included). */
  async counts(viewer: Viewer, projectId: string): Promise<{ status: ClientRequestStatus; count: number }[]> {
    await this.standing(viewer, projectId);
    const rows = await this.prisma.clientRequest.groupBy({
      by: ['status'],
      where: { projectId, organizationId: viewer.organizationId },
      _count: true,
    });
    return REQUEST_STATUSES.map((status) => ({ status, count: rows.find((r) => r.status === status)?._count ?? 0 }));
  }

  async changeOrder(viewer: Viewer, requestId: string): Promise<ChangeOrder | null> {
    const request = await this.get(viewer, requestId);
    return this.prisma.changeOrder.findUnique({ where: { sourceRequestId: request.id } });
  }

  async create(viewer: Viewer, input: CreateClientRequestInput): Promise<ClientRequest> {
    const standing = await this.standing(viewer, input.projectId);
    this.assertMayFile(standing);
    const project = await this.prisma.project.findUniqueOrThrow({ where: { id: input.projectId }, select: { archivedAt: true } });
    if (project.archivedAt) throw forbidden('The project is archived');
    // A request made from a message keeps a link to it; the viewer must be able to read it.
    const source = input.fromMessageId ? await this.messages.get(viewer, input.fromMessageId) : null;
    const attachmentIds = input.attachmentIds ?? [];
    const files = attachmentIds.length ? this.files : null;
    if (attachmentIds.length && !files) throw new Error('ClientRequestService.useFiles was not called');
    // A retry with the idempotency key finds the files attached by the first run: it is answered before they are checked.
    if (files && !input.idempotencyKey) await files.check(viewer, attachmentIds);
    const customFields = await this.fieldCheck.validate(viewer.organizationId, 'CLIENT_REQUEST', input.customFields ?? null);
    const created = this.flow.create(
      viewer,
      input.idempotencyKey,
      { operation: 'createClientRequest', action: 'CREATED' },
      async (tx, log) => {
        const [counter] = await tx.$queryRaw<{ lastRequestNumber: number }[]>`
        UPDATE "Project" SET "lastRequestNumber" = "lastRequestNumber" + 1 WHERE id = ${input.projectId}::uuid RETURNING "lastRequestNumber"`;
        const number = counter!.lastRequestNumber;
        const channel = await openItemChannel(tx, log, viewer, { kind: 'REQUEST', projectId: input.projectId, name: `Request ${number}` });
        const request = await tx.clientRequest.create({
          data: {
            organizationId: viewer.organizationId,
            projectId: input.projectId,
            number,
            title: input.title,
            description: input.description,
            type: input.type,
            requesterId: viewer.id,
            channelId: channel.id,
            sourceMessageId: source?.id ?? null,
            ...(customFields ? { customFields } : {}),
          },
        });
        if (files) await files.attach(tx, log, viewer, request, attachmentIds);
        return request;
      },
    );
    return files ? created.catch((error: unknown) => files.rethrow(viewer, attachmentIds, error)) : created;
  }

  /** The requester edits their own request while it is pending. */
  async update(viewer: Viewer, id: string, input: UpdateClientRequestInput): Promise<ClientRequest> {
    const changes = {
      ...(input.title != null ? { title: input.title } : {}),
      ...(input.description != null ? { description: input.description } : {}),
      ...(input.type != null ? { type: input.type } : {}),
    };
    return this.flow.run(viewer, id, input.idempotencyKey, 'edit', { data: () => changes });
  }

  /**
   * Replaces a request's custom fields (checked against the definitions; keys
   * left as stored stay as they are): its requester while it is pending, staff
   * at any time. Recorded like other changes (FIELDS_CHANGED, naming the keys).
   */
  async updateFields(viewer: Viewer, id: string, customFields: unknown, key?: string | null): Promise<ClientRequest> {
    const current = await this.get(viewer, id);
    const value = await this.fieldCheck.validate(viewer.organizationId, 'CLIENT_REQUEST', customFields, current.customFields);
    return this.flow.run(viewer, id, key, isStaff(viewer) ? 'staffFields' : 'fields', {
      data: () => ({ customFields: value ?? Prisma.DbNull }),
      detail: (_tx, before) => ({ fields: changedKeys(before.customFields, value) }),
    });
  }

  async withdraw(viewer: Viewer, id: string, reason: string | null, key?: string | null): Promise<ClientRequest> {
    return this.flow.run(viewer, id, key, 'withdraw', { reason });
  }

  async approve(viewer: Viewer, id: string, note: string | null, key?: string | null): Promise<ClientRequest> {
    return this.flow.run(viewer, id, key, 'approve', decision(viewer, note));
  }

  async reject(viewer: Viewer, id: string, reason: string, key?: string | null): Promise<ClientRequest> {
    return this.flow.run(viewer, id, key, 'reject', decision(viewer, reason));
  }

  /** Turns a pending or approved request into a draft change order of its project, linked both ways. */
  async convert(viewer: Viewer, id: string, note: string | null, key?: string | null): Promise<ClientRequest> {
    return this.flow.run(viewer, id, key, 'convert', {
      ...decision(viewer, note),
      detail: async (tx, _before, request) => {
        const [counter] = await tx.$queryRaw<{ lastChangeOrderNumber: number }[]>`
          UPDATE "Project" SET "lastChangeOrderNumber" = "lastChangeOrderNumber" + 1 WHERE id = ${request.projectId}::uuid RETURNING "lastChangeOrderNumber"`;
        const order = await tx.changeOrder.create({
          data: {
            organizationId: request.organizationId,
            projectId: request.projectId,
            number: counter!.lastChangeOrderNumber,
            title: request.title,
            description: request.description,
            sourceRequestId: request.id,
          },
        });
        return { changeOrderId: order.id, changeOrderNumber: order.number };
      },
    });
  }

  /** Staff decide; the requester changes their own request while their access lets them file. */
  async authorize(viewer: Viewer, who: 'staff' | 'requester', request: ClientRequest): Promise<void> {
    if (who === 'staff') {
      if (!isStaff(viewer)) throw forbidden('Only organization staff decide on client requests');
      return;
    }
    if (request.requesterId !== viewer.id) throw forbidden('Only the requester changes their request');
    this.assertMayFile(await this.standing(viewer, request.projectId));
  }

  private assertMayFile(standing: Standing): void {
    if (standing === 'viewer') throw forbidden('Your project access is read-only');
    if (standing === 'member') throw forbidden('Requests are filed by clients and staff');
  }

  /** The viewer's standing in a project; a project they cannot see is NOT_FOUND. */
  private async standing(viewer: Viewer, projectId: string): Promise<Standing> {
    assertId(projectId, 'Project');
    if (!isExternal(viewer.role)) {
      const exists = await this.prisma.project.count({ where: { id: projectId, organizationId: viewer.organizationId } });
      if (!exists) throw notFound('Project');
      return isStaff(viewer) ? 'staff' : 'member';
    }
    const access = await this.prisma.projectAccess.findFirst({
      where: { projectId, userId: viewer.id, organizationId: viewer.organizationId },
      select: { role: true },
    });
    if (!access) throw notFound('Project');
    return access.role === 'VIEWER' ? 'viewer' : 'client';
  }
}
