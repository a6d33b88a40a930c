import type { Viewer } from './viewer.ts';
import type {
  ChangeOrder,
  ClientRequest,
  ClientRequestStatus,
  ClientRequestType,
  Prisma,
  PrismaClient,
} from '../generated/prisma/client.ts';
import { assertId, isExternal, isStaff, readableClientRequestWhere } from './access.ts';
import type { ChannelLog } from './channel-log.ts';
import type { Tx } from '../db/tx.ts';
import { conflict, forbidden, notFound } from './errors.ts';
import { idempotent } from './idempotency.ts';
import { joinItemChannel, openItemChannel, recordItemChange } from './item-log.ts';
import type { MessageService } from './messages.ts';
import type { NotificationService } from './notifications.ts';
import type { UserService } from './users.ts';

export const REQUEST_STATUSES: ClientRequestStatus[] = ['PENDING', 'APPROVED', 'REJECTED', 'CONVERTED', 'WITHDRAWN'];

export interface CreateClientRequestInput {
  projectId: string;
  title: string;
  description: string;
  type: ClientRequestType;
  fromMessageId?: string | null;
  idempotencyKey?: string | null;
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
}

type Query = { select?: Prisma.ClientRequestSelect; include?: Prisma.ClientRequestInclude };

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
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
    private readonly notifications: NotificationService,
    private readonly messages: MessageService,
    private readonly users: UserService,
  ) {}

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
    return {
      ...this.visibleWhere(viewer),
      ...(filter.projectId ? { projectId: filter.projectId } : {}),
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.type ? { type: filter.type } : {}),
      ...(filter.requesterId ? { requesterId: filter.requesterId } : {}),
    };
  }

  /** How many of a project's requests are in each status (every status listed, zeros included). */
  async counts(viewer: Viewer, projectId: string): Promise<{ status: ClientRequestStatus; count: number }[]> {
    await this.standing(viewer, projectId);
    const rows = await this.prisma.clientRequest.groupBy({ by: ['status'], where: { projectId, organizationId: viewer.organizationId }, _count: true });
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
    return idempotent(
      this.prisma,
      viewer,
      input.idempotencyKey,
      'createClientRequest',
      (remember) =>
        this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
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
            },
          });
          await recordItemChange(tx, log, viewer, { item: 'CLIENT_REQUEST', itemId: request.id, channelId: channel.id, action: 'CREATED', from: null, to: 'PENDING' });
          await remember(tx, request.id);
          return request;
        }),
      (id) => this.prisma.clientRequest.findUniqueOrThrow({ where: { id } }),
    );
  }

  /** The requester edits their own request while it is pending. */
  async update(viewer: Viewer, id: string, input: UpdateClientRequestInput): Promise<ClientRequest> {
    const changes = {
      ...(input.title != null ? { title: input.title } : {}),
      ...(input.description != null ? { description: input.description } : {}),
      ...(input.type != null ? { type: input.type } : {}),
    };
    return this.change(viewer, id, input.idempotencyKey, 'updateClientRequest', {
      actor: 'requester',
      from: ['PENDING'],
      to: 'PENDING',
      action: 'EDITED',
      data: () => changes,
    });
  }

  async withdraw(viewer: Viewer, id: string, reason: string | null, key?: string | null): Promise<ClientRequest> {
    return this.change(viewer, id, key, 'withdrawClientRequest', { actor: 'requester', from: ['PENDING'], to: 'WITHDRAWN', action: 'WITHDRAWN', reason });
  }

  async approve(viewer: Viewer, id: string, note: string | null, key?: string | null): Promise<ClientRequest> {
    return this.change(viewer, id, key, 'approveClientRequest', { actor: 'staff', from: ['PENDING'], to: 'APPROVED', action: 'APPROVED', reason: note, decision: true });
  }

  async reject(viewer: Viewer, id: string, reason: string, key?: string | null): Promise<ClientRequest> {
    return this.change(viewer, id, key, 'rejectClientRequest', { actor: 'staff', from: ['PENDING'], to: 'REJECTED', action: 'REJECTED', reason, decision: true });
  }

  /** Turns a pending or approved request into a draft change order of its project, linked both ways. */
  async convert(viewer: Viewer, id: string, note: string | null, key?: string | null): Promise<ClientRequest> {
    return this.change(viewer, id, key, 'convertClientRequest', {
      actor: 'staff',
      from: ['PENDING', 'APPROVED'],
      to: 'CONVERTED',
      action: 'CONVERTED',
      reason: note,
      decision: true,
      after: async (tx, request) => {
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

  /**
   * One change of a request, in one transaction: the row is locked and its
   * status checked (a request that is not in `from` is a CONFLICT naming its
   * status: of two racing approvals one wins), then updated, recorded (audit,
   * system event, updates) and its requester notified.
   */
  private async change(
    viewer: Viewer,
    id: string,
    key: string | null | undefined,
    operation: string,
    spec: {
      actor: 'staff' | 'requester';
      from: ClientRequestStatus[];
      to: ClientRequestStatus;
      action: string;
      reason?: string | null;
      /** Records the decider and the note. */
      decision?: boolean;
      data?: () => Prisma.ClientRequestUpdateManyMutationInput;
      after?: (tx: Tx, request: ClientRequest) => Promise<Record<string, unknown>>;
    },
  ): Promise<ClientRequest> {
    const current = await this.get(viewer, id);
    if (spec.actor === 'staff' && !isStaff(viewer)) throw forbidden('Only organization staff decide on client requests');
    if (spec.actor === 'requester') {
      if (current.requesterId !== viewer.id) throw forbidden('Only the requester changes their request');
      this.assertMayFile(await this.standing(viewer, current.projectId));
    }
    return idempotent(
      this.prisma,
      viewer,
      key,
      operation,
      (remember) =>
        this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
          const [locked] = await tx.$queryRaw<{ status: ClientRequestStatus }[]>`
            SELECT status FROM "ClientRequest" WHERE id = ${current.id}::uuid FOR UPDATE`;
          const from = locked!.status;
          if (!spec.from.includes(from)) {
            throw conflict(`The request is ${from}; it cannot be ${spec.action.toLowerCase()}`, { status: from });
          }
          const now = new Date();
          const request = await tx.clientRequest.update({
            where: { id: current.id },
            data: {
              status: spec.to,
              ...(spec.decision ? { decidedById: viewer.id, decidedAt: now, decisionNote: spec.reason ?? null } : {}),
              ...spec.data?.(),
            },
          });
          if (spec.actor === 'staff') await joinItemChannel(tx, log, viewer.id, request.channelId);
          const detail = (await spec.after?.(tx, request)) ?? {};
          await recordItemChange(tx, log, viewer, {
            item: 'CLIENT_REQUEST',
            itemId: request.id,
            channelId: request.channelId,
            action: spec.action,
            from,
            to: spec.to,
            reason: spec.reason,
            detail,
          });
          if (from !== spec.to) {
            await this.notifications.notify(tx, log, viewer, [
              {
                userId: request.requesterId,
                type: 'CLIENT_REQUEST_STATUS',
                requestId: request.id,
                data: { number: request.number, title: request.title, from, to: spec.to, reason: spec.reason ?? null, actorName: viewer.displayName },
              },
            ]);
          }
          await remember(tx, request.id);
          return request;
        }),
      (requestId) => this.prisma.clientRequest.findUniqueOrThrow({ where: { id: requestId } }),
    );
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
