import { v7 as uuidv7 } from 'uuid';
import { Prisma, type EntityType, type PrismaClient, type ProjectRole } from '../generated/prisma/client.ts';
import {
  assertId,
  isExternal,
  mayManageIntegrations,
  mayReadClientRequest,
  mayReadLinkedEntity,
  mayReadSupportTicket,
  maySeeDeletedContent,
  readableChannel,
  readableMessageWhere,
  readableProjectWhere,
} from './access.ts';
import { audit } from './audit.ts';
import type { Integration } from './api-keys.ts';
import { badInput, conflict, forbidden, notFound } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import type { Viewer } from './viewer.ts';

/**
 * Entity links (`@task#45` in a body): the host product registers kinds of
 * its objects (entity types, managed by the organization's admins) and the
 * objects themselves (linked entities, upserted by its backend with an API
 * key). Parley's own objects are built-in types: `ticket` (a support ticket
 * by its number in the organization), `request` and `change_order` (by their
 * number in the project of the message's channel) and `message` (by its seq
 * in the same channel).
 *
 * Messages store what they link as written (MessageLink rows, on send and
 * edit); what a link says is resolved when it is read, for the reader: a
 * label changed since shows the new label, and a reference the reader may
 * not see (unknown type or id, another organization's, an entity of a project
 * the reader has no access to, a ticket of someone else) is left out as if it
 * were plain text.
 */

export const BUILT_IN_TYPES = {
  ticket: 'Support ticket',
  request: 'Client request',
  change_order: 'Change order',
  message: 'Message',
} as const;
type BuiltIn = keyof typeof BUILT_IN_TYPES;
const isBuiltIn = (key: string): key is BuiltIn => Object.hasOwn(BUILT_IN_TYPES, key);

/** A type key as message-refs.ts reads one after @. */
const TYPE_KEY = /^[a-z][a-z0-9_]{0,39}$/;
/** An external id as message-refs.ts reads one after #: anything else could never be linked. */
const EXTERNAL_ID = /^[A-Za-z0-9](?:[A-Za-z0-9._:-]{0,98}[A-Za-z0-9])?$/;
const DISPLAY_NAME_MAX = 100;
const LABEL_MAX = 300;
const URL_MAX = 2000;
/** Most entities (or references) one upsertLinkedEntities (or deleteLinkedEntities) call takes. */
export const ENTITY_BATCH_MAX = 500;

export interface EntityTypeInput {
  key: string;
  displayName: string;
  urlTemplate?: string | null;
}
export interface LinkedEntityInput {
  type: string;
  externalId: string;
  label: string;
  projectId?: string | null;
  url?: string | null;
}
export interface EntityRef {
  type: string;
  externalId: string;
}

/** One occurrence of a link in a body, as the reader may see it. */
export interface ResolvedLink {
  type: string;
  externalId: string;
  typeName: string;
  label: string;
  url: string | null;
  /** A built-in type's object, for its global id. */
  node: { type: 'SupportTicket' | 'ClientRequest' | 'ChangeOrder' | 'Message'; id: string } | null;
}
export interface MessageLinkView extends ResolvedLink {
  start: number;
  end: number;
}

/** A row of the resolution query: one reference, its context and what it may name. */
interface RefRow {
  messageId: string | null;
  organizationId: string;
  typeKey: string;
  externalId: string;
  ranges: unknown;
  deleted: boolean;
  channelProjectId: string | null;
  typeName: string | null;
  urlTemplate: string | null;
  label: string | null;
  url: string | null;
  entityProjectId: string | null;
  ticketId: string | null;
  ticketLabel: string | null;
  ticketRequesterId: string | null;
  requestId: string | null;
  requestLabel: string | null;
  changeOrderId: string | null;
  changeOrderLabel: string | null;
  linkedMessageId: string | null;
  linkedMessageLabel: string | null;
}

function validUrl(value: string, field: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw badInput(field, `${field} must be an absolute http or https URL`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || value.length > URL_MAX)
    throw badInput(field, `${field} must be an absolute http or https URL of at most ${URL_MAX} characters`);
}

function validTemplate(template: string): string {
  const trimmed = template.trim();
  if (!trimmed.includes('{id}')) throw badInput('urlTemplate', 'urlTemplate must contain {id}');
  validUrl(trimmed.replaceAll('{id}', 'id'), 'urlTemplate');
  return trimmed;
}

function validDisplayName(name: string): string {
  const trimmed = name.trim();
  if (!trimmed || trimmed.length > DISPLAY_NAME_MAX)
    throw badInput('displayName', `displayName must be 1 to ${DISPLAY_NAME_MAX} characters`);
  return trimmed;
}

const urlFor = (template: string | null, externalId: string) =>
  template === null ? null : template.replaceAll('{id}', encodeURIComponent(externalId));

// A reference's number, for the built-in types; NULL (matching nothing) when the id is not one.
const number = Prisma.sql`CASE WHEN r."externalId" ~ '^[0-9]{1,9}$' THEN r."externalId"::int END`;

/**
 * The resolution query over `refs`, a query that yields, per reference,
 * "messageId", "typeKey", "externalId", ranges, deleted, "organizationId",
 * "channelId" and "channelProjectId". Every candidate comes back in one
 * statement, with what the read rules need to decide (`visible`).
 */
const resolveSql = (refs: Prisma.Sql) => Prisma.sql`
  WITH r AS (${refs})
  SELECT r."messageId", r."organizationId", r."typeKey", r."externalId", r.ranges, r.deleted, r."channelProjectId",
    et."displayName" AS "typeName", et."urlTemplate", le.label, le.url, le."projectId" AS "entityProjectId",
    t.id AS "ticketId", 'Ticket #' || t.number || ': ' || t.subject AS "ticketLabel", t."requesterId" AS "ticketRequesterId",
    cr.id AS "requestId", 'Request #' || cr.number || ': ' || cr.title AS "requestLabel",
    co.id AS "changeOrderId", 'Change order #' || co.number || ': ' || co.title AS "changeOrderLabel",
    lm.id AS "linkedMessageId", 'Message #' || lm.seq || ' by ' || u."displayName" AS "linkedMessageLabel"
  FROM r
  LEFT JOIN "EntityType" et ON et."organizationId" = r."organizationId" AND et.key = r."typeKey"
  LEFT JOIN "LinkedEntity" le ON le."typeId" = et.id AND le."externalId" = r."externalId"
  LEFT JOIN "SupportTicket" t ON r."typeKey" = 'ticket' AND t."organizationId" = r."organizationId" AND t.number = ${number}
  LEFT JOIN "ClientRequest" cr ON r."typeKey" = 'request' AND cr."projectId" = r."channelProjectId" AND cr.number = ${number}
  LEFT JOIN "ChangeOrder" co ON r."typeKey" = 'change_order' AND co."projectId" = r."channelProjectId" AND co.number = ${number}
  LEFT JOIN "Message" lm ON r."typeKey" = 'message' AND lm."channelId" = r."channelId" AND lm.seq = ${number} AND lm."deletedAt" IS NULL
  LEFT JOIN "User" u ON u.id = lm."senderId"`;

export class EntityLinkService {
  constructor(private readonly prisma: PrismaClient) {}

  // -------------------------------------------------------------------------
  // Entity types (the organization's admins)

  private assertAdmin(viewer: Viewer) {
    if (!mayManageIntegrations(viewer)) throw forbidden('Only organization owners and admins manage entity types');
  }

  /** The organization's entity types, by key (everyone of the organization: composers offer them). */
  listTypes(viewer: Viewer): Promise<EntityType[]> {
    return this.prisma.entityType.findMany({ where: { organizationId: viewer.organizationId }, orderBy: { key: 'asc' } });
  }

  async createType(viewer: Viewer, input: EntityTypeInput): Promise<EntityType> {
    this.assertAdmin(viewer);
    if (!TYPE_KEY.test(input.key))
      throw badInput('key', 'key must be 1 to 40 lower-case letters, digits or underscores, starting with a letter');
    if (isBuiltIn(input.key)) throw badInput('key', `"${input.key}" is a built-in type`);
    const data = {
      organizationId: viewer.organizationId,
      key: input.key,
      displayName: validDisplayName(input.displayName),
      urlTemplate: input.urlTemplate == null ? null : validTemplate(input.urlTemplate),
    };
    try {
      return await this.prisma.$transaction(async (tx) => {
        const type = await tx.entityType.create({ data });
        await this.audited(tx, viewer, 'entityType.create', type);
        return type;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`An entity type "${input.key}" exists`, { field: 'key' });
      throw error;
    }
  }

  /** Changes a type's display name or URL template (a key is what messages say, so it stays). */
  async updateType(viewer: Viewer, id: string, input: { displayName?: string | null; urlTemplate?: string | null }): Promise<EntityType> {
    this.assertAdmin(viewer);
    assertId(id, 'Entity type');
    const data: Prisma.EntityTypeUpdateManyMutationInput = {};
    if (input.displayName != null) data.displayName = validDisplayName(input.displayName);
    if (input.urlTemplate !== undefined) data.urlTemplate = input.urlTemplate === null ? null : validTemplate(input.urlTemplate);
    return this.prisma.$transaction(async (tx) => {
      const { count } = await tx.entityType.updateMany({ where: { id, organizationId: viewer.organizationId }, data });
      if (count === 0) throw notFound('Entity type');
      const type = await tx.entityType.findUniqueOrThrow({ where: { id } });
      await this.audited(tx, viewer, 'entityType.update', type);
      return type;
    });
  }

  /** Deletes a type and its entities; links to them turn back into plain text. */
  async deleteType(viewer: Viewer, id: string): Promise<string> {
    this.assertAdmin(viewer);
    assertId(id, 'Entity type');
    return this.prisma.$transaction(async (tx) => {
      const type = await tx.entityType.findFirst({ where: { id, organizationId: viewer.organizationId } });
      if (!type) throw notFound('Entity type');
      await tx.entityType.delete({ where: { id } });
      await this.audited(tx, viewer, 'entityType.delete', type);
      return id;
    });
  }

  private audited(tx: Prisma.TransactionClient, viewer: Viewer, action: string, type: EntityType) {
    return audit(tx, {
      organizationId: viewer.organizationId,
      actorId: viewer.id,
      action,
      targetType: 'EntityType',
      targetId: type.id,
      data: { key: type.key, displayName: type.displayName, urlTemplate: type.urlTemplate },
    });
  }

  // -------------------------------------------------------------------------
  // Linked entities (integration operations, with an API key)

  /**
   * Creates or updates entities in one statement; an entity as it already is
   * is left alone. Returns how many were created or changed.
   */
  async upsertEntities(integration: Integration, entities: LinkedEntityInput[]): Promise<number> {
    if (entities.length > ENTITY_BATCH_MAX) throw badInput('entities', `At most ${ENTITY_BATCH_MAX} entities per call`);
    if (entities.length === 0) return 0;
    const org = integration.organizationId;
    // The last of several entries for one entity wins.
    const unique = new Map<string, LinkedEntityInput>();
    entities.forEach((e, i) => {
      if (!EXTERNAL_ID.test(e.externalId))
        throw badInput(`entities.${i}.externalId`, `externalId "${e.externalId}" is not one a message can link (letters, digits, . _ : -)`);
      const label = e.label.trim();
      if (!label || label.length > LABEL_MAX) throw badInput(`entities.${i}.label`, `label must be 1 to ${LABEL_MAX} characters`);
      if (e.url != null) validUrl(e.url, `entities.${i}.url`);
      if (e.projectId != null) assertId(e.projectId, 'Project');
      unique.set(`${e.type}#${e.externalId}`, { ...e, label });
    });
    const keys = [...new Set([...unique.values()].map((e) => e.type))];
    const projectIds = [...new Set([...unique.values()].flatMap((e) => (e.projectId ? [e.projectId] : [])))];
    const [types, projects] = await Promise.all([
      this.prisma.entityType.findMany({ where: { organizationId: org, key: { in: keys } }, select: { id: true, key: true } }),
      projectIds.length
        ? this.prisma.project.findMany({ where: { organizationId: org, id: { in: projectIds } }, select: { id: true } })
        : Promise.resolve([]),
    ]);
    const typeIds = new Map(types.map((t) => [t.key, t.id]));
    const unknown = keys.find((k) => !typeIds.has(k));
    if (unknown !== undefined) {
      throw badInput(
        'entities.type',
        isBuiltIn(unknown) ? `"${unknown}" is a built-in type; its objects are Parley's own` : `Unknown entity type "${unknown}"`,
      );
    }
    if (projects.length !== projectIds.length) throw notFound('Project');
    const rows = [...unique.values()];
    const changed = await this.prisma.$executeRaw`
      INSERT INTO "LinkedEntity" (id, "organizationId", "typeId", "externalId", label, "projectId", url, "updatedAt")
      SELECT e.id, ${org}::uuid, e."typeId", e."externalId", e.label, e."projectId", e.url, now()
      FROM unnest(
        ${rows.map(() => uuidv7())}::uuid[], ${rows.map((e) => typeIds.get(e.type)!)}::uuid[], ${rows.map((e) => e.externalId)}::text[],
        ${rows.map((e) => e.label)}::text[], ${rows.map((e) => e.projectId ?? null)}::uuid[], ${rows.map((e) => e.url ?? null)}::text[]
      ) AS e(id, "typeId", "externalId", label, "projectId", url)
      ON CONFLICT ("typeId", "externalId") DO UPDATE
        SET label = EXCLUDED.label, "projectId" = EXCLUDED."projectId", url = EXCLUDED.url, "updatedAt" = now()
        WHERE ("LinkedEntity".label, "LinkedEntity"."projectId", "LinkedEntity".url)
          IS DISTINCT FROM (EXCLUDED.label, EXCLUDED."projectId", EXCLUDED.url)`;
    return changed;
  }

  /** Deletes entities by reference, in one statement; returns how many there were. */
  async deleteEntities(integration: Integration, refs: EntityRef[]): Promise<number> {
    if (refs.length > ENTITY_BATCH_MAX) throw badInput('refs', `At most ${ENTITY_BATCH_MAX} references per call`);
    if (refs.length === 0) return 0;
    return this.prisma.$executeRaw`
      DELETE FROM "LinkedEntity" le
      USING "EntityType" et, unnest(${refs.map((r) => r.type)}::text[], ${refs.map((r) => r.externalId)}::text[]) AS r(key, "externalId")
      WHERE le."typeId" = et.id AND et."organizationId" = ${integration.organizationId}::uuid
        AND et.key = r.key AND le."externalId" = r."externalId"`;
  }

  // -------------------------------------------------------------------------
  // Resolution, for a reader

  /**
   * The links of each message (by `messageIds`, in order) the viewer may see,
   * one per occurrence, in body order. One query for the whole page, plus one
   * for an external reader's project grants when a link needs them. What the
   * viewer is matters only where a link needs it: a message without links
   * reads nothing of the viewer, links read the organization and role, and
   * only a project entity (for an external reader) or a ticket (for a
   * non-agent) the user, so a live event's links are resolved once for all
   * subscribers, or once per role (shared-execution.ts).
   */
  async linksOf(viewer: Viewer, messageIds: readonly string[]): Promise<MessageLinkView[][]> {
    const rows = await this.prisma.$queryRaw<RefRow[]>(
      resolveSql(Prisma.sql`
        SELECT ml."messageId", ml."typeKey", ml."externalId", ml.ranges, m."deletedAt" IS NOT NULL AS deleted,
          ml."organizationId", ml."channelId", ch."projectId" AS "channelProjectId"
        FROM "MessageLink" ml
        JOIN "Message" m ON m.id = ml."messageId"
        JOIN "Channel" ch ON ch.id = ml."channelId"
        WHERE ml."messageId" = ANY(${messageIds as string[]}::uuid[])`),
    );
    const byMessage = new Map<string, MessageLinkView[]>();
    const resolved = await this.visible(viewer, rows);
    rows.forEach((row, i) => {
      const link = resolved[i];
      if (!link || (row.deleted && !maySeeDeletedContent(viewer))) return;
      const list = byMessage.get(row.messageId!) ?? [];
      for (const [start, end] of row.ranges as [number, number][]) list.push({ ...link, start, end });
      byMessage.set(row.messageId!, list);
    });
    return messageIds.map((id) => (byMessage.get(id) ?? []).sort((x, y) => x.start - y.start));
  }

  /**
   * One reference as the viewer would see it written in `channelId` (the
   * context of `request`, `change_order` and `message`), or in `projectId`
   * (for the first two); null when they may not see it, whatever the reason.
   */
  async resolve(viewer: Viewer, ref: EntityRef, context: { channelId?: string | null; projectId?: string | null }) {
    const scope = await this.scope(viewer, context);
    const rows = await this.prisma.$queryRaw<RefRow[]>(
      resolveSql(Prisma.sql`
        SELECT NULL::uuid AS "messageId", ${ref.type}::text AS "typeKey", ${ref.externalId}::text AS "externalId",
          NULL::jsonb AS ranges, false AS deleted, ${viewer.organizationId}::uuid AS "organizationId",
          ${scope.channelId}::uuid AS "channelId", ${scope.projectId}::uuid AS "channelProjectId"`),
    );
    const [link] = await this.visible(viewer, rows);
    return { link: link ?? null, scope };
  }

  /** Where to look for the messages that link `ref`, or NOT_FOUND when the viewer may not see it (the same for every reason). */
  async linkedMessagesWhere(
    viewer: Viewer,
    ref: EntityRef,
    context: { channelId?: string | null; projectId?: string | null },
  ): Promise<Prisma.MessageWhereInput> {
    const { link, scope } = await this.resolve(viewer, ref, context);
    if (!link) throw notFound('Linked entity');
    const within: Prisma.MessageWhereInput =
      ref.type === 'message'
        ? { channelId: scope.channelId! }
        : ref.type === 'request' || ref.type === 'change_order'
          ? { channel: { projectId: scope.projectId! } }
          : {};
    return {
      AND: [
        readableMessageWhere(viewer),
        within,
        { deletedAt: null, links: { some: { organizationId: viewer.organizationId, typeKey: ref.type, externalId: ref.externalId } } },
      ],
    };
  }

  /** The channel and project a reference is read in; NOT_FOUND for ones the viewer may not read. */
  private async scope(
    viewer: Viewer,
    context: { channelId?: string | null; projectId?: string | null },
  ): Promise<{ channelId: string | null; projectId: string | null }> {
    let channelId: string | null = null;
    let projectId: string | null = null;
    if (context.channelId != null) {
      const access = await readableChannel(this.prisma, viewer, context.channelId);
      channelId = access.channel.id;
      projectId = access.channel.projectId;
    }
    if (context.projectId != null) {
      assertId(context.projectId, 'Project');
      const project = await this.prisma.project.findFirst({ where: { id: context.projectId, ...readableProjectWhere(viewer) } });
      if (!project) throw notFound('Project');
      if (channelId !== null && projectId !== project.id) throw badInput('projectId', 'The channel is not in this project');
      projectId = project.id;
    }
    return { channelId, projectId };
  }

  /**
   * What each row names, when the viewer may see it (null otherwise), by the
   * rules of access.ts. Reads of the viewer stay lazy (see linksOf): grants
   * are loaded only for an external reader, and only when a row needs one.
   */
  private async visible(viewer: Viewer, rows: RefRow[]): Promise<(ResolvedLink | null)[]> {
    if (rows.length === 0) return [];
    // The project whose visibility decides a row.
    const projectOf = (row: RefRow): string | null => {
      if (row.label !== null) return row.entityProjectId;
      if (row.requestId !== null || row.changeOrderId !== null) return row.channelProjectId;
      return null;
    };
    const needed = [...new Set(rows.flatMap((r) => projectOf(r) ?? []))];
    // Only external users' rights depend on grants (mayReadProject): nobody else's are loaded.
    const grants = new Map<string, { role: ProjectRole }>();
    if (needed.length > 0 && isExternal(viewer.role)) {
      const found = await this.prisma.projectAccess.findMany({
        where: { userId: viewer.id, projectId: { in: needed } },
        select: { projectId: true, role: true },
      });
      for (const g of found) grants.set(g.projectId, { role: g.role });
    }
    const grantOf = (projectId: string | null) => (projectId === null ? null : (grants.get(projectId) ?? null));
    return rows.map((row): ResolvedLink | null => {
      // Nothing of another organization, whatever the row (the viewer is read only once there are rows).
      if (row.organizationId !== viewer.organizationId) return null;
      const base = { type: row.typeKey, externalId: row.externalId };
      if (row.label !== null) {
        const entity = { organizationId: row.organizationId, projectId: row.entityProjectId };
        if (!mayReadLinkedEntity(viewer, entity, grantOf(row.entityProjectId))) return null;
        return { ...base, typeName: row.typeName!, label: row.label, url: row.url ?? urlFor(row.urlTemplate, row.externalId), node: null };
      }
      if (!isBuiltIn(row.typeKey)) return null;
      const builtIn = { ...base, typeName: BUILT_IN_TYPES[row.typeKey], url: null };
      const org = { organizationId: row.organizationId };
      switch (row.typeKey) {
        case 'ticket':
          if (row.ticketId === null || !mayReadSupportTicket(viewer, { ...org, requesterId: row.ticketRequesterId! })) return null;
          return { ...builtIn, label: row.ticketLabel!, node: { type: 'SupportTicket', id: row.ticketId } };
        case 'request':
          if (row.requestId === null || !mayReadClientRequest(viewer, org, grantOf(row.channelProjectId))) return null;
          return { ...builtIn, label: row.requestLabel!, node: { type: 'ClientRequest', id: row.requestId } };
        case 'change_order':
          // A change order is read by whoever reads the request it came from, in the same project.
          if (row.changeOrderId === null || !mayReadClientRequest(viewer, org, grantOf(row.channelProjectId))) return null;
          return { ...builtIn, label: row.changeOrderLabel!, node: { type: 'ChangeOrder', id: row.changeOrderId } };
        case 'message':
          // In the channel the reference is read in, whose readers read its messages.
          return row.linkedMessageId === null
            ? null
            : { ...builtIn, label: row.linkedMessageLabel!, node: { type: 'Message', id: row.linkedMessageId } };
      }
    });
  }
}
