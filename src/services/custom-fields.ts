import { isDeepStrictEqual } from 'node:util';
import type { Viewer } from './viewer.ts';
import {
  Prisma,
  type CustomFieldDefinition,
  type CustomFieldEntity,
  type CustomFieldType,
  type PrismaClient,
} from '../generated/prisma/client.ts';
import { assertId, isAdmin, isId } from './access.ts';
import { audit, auditedBy } from './audit.ts';
import { badInput, conflict, forbidden, notFound } from './errors.ts';
import { checkCustomFields } from './message-content.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import type { ParleyPubSub, Topics } from '../bus/pubsub.ts';
import { LRUCache } from 'lru-cache';

/**
 * Custom field definitions (per organization and entity: channels, messages,
 * client requests, support tickets) and the check of every write of an
 * entity's `customFields` against them.
 *
 * - An entity with no active definition keeps free-form `customFields` (any
 *   JSON object), as before definitions existed. Once it has one, every key
 *   written must be defined, and each value is checked against its type.
 * - Stored values are never rewritten. A write replaces the whole object; a
 *   key whose value is the one already stored is kept as it is even when it no
 *   longer satisfies the definitions (a tightened bound, a removed option, an
 *   archived definition), so changing a definition never makes an entity
 *   impossible to edit. Keys that change are checked; required fields must be
 *   present in every write of `customFields`.
 * - USER values are stored as the user's global id (what `User.id` answers);
 *   a raw uuid is accepted and stored in that form.
 */

export type { CustomFieldEntity, CustomFieldType };

/** The check writes of `customFields` go through (MessageService, ChannelService, requests, tickets take only this). */
export interface CustomFieldCheck {
  /**
   * `value` as it is stored: checked against the organization's active
   * definitions of `entity` (free-form when there are none). `previous` is the
   * object stored now (for updates), whose unchanged keys are kept as they
   * are. Throws BAD_USER_INPUT naming `customFields.<key>`.
   */
  validate(organizationId: string, entity: CustomFieldEntity, value: unknown, previous?: unknown): Promise<Prisma.JsonObject | null>;
}

export interface CustomFieldDefinitionInput {
  entity: CustomFieldEntity;
  key: string;
  label: string;
  type: CustomFieldType;
  required?: boolean | null;
  options?: readonly string[] | null;
  min?: number | null;
  max?: number | null;
  /** YYYY-MM-DD. */
  minDate?: string | null;
  maxDate?: string | null;
  position?: number | null;
}

/** What updateCustomFieldDefinition may change: absent keys stay; null clears a bound. The key and entity never change. */
export type CustomFieldDefinitionUpdate = {
  [K in Exclude<keyof CustomFieldDefinitionInput, 'entity' | 'key'>]?: CustomFieldDefinitionInput[K] | null;
};

/** Keys: a letter, then letters, digits and underscores (they are JSON keys clients write). */
const KEY = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;
const LABEL_MAX = 80;
const OPTION_MAX = 100;
const OPTIONS_MAX = 200;
/** Active definitions per entity: a form, not a schema. */
export const DEFINITIONS_MAX = 100;
/** Longest TEXT value when the definition sets no max. */
export const TEXT_MAX = 1000;
/**
 * How long a process trusts the definitions it read. A change clears them in
 * every process at once (`customFields:changed` on pub/sub); this bounds how
 * long a lost signal (Redis down at that moment) leaves another process with
 * the old definitions.
 */
export const DEFINITION_CACHE_MS = 300_000;

const ENTITY_NAME: Record<CustomFieldEntity, string> = {
  CHANNEL: 'channels',
  MESSAGE: 'messages',
  CLIENT_REQUEST: 'client requests',
  SUPPORT_TICKET: 'support tickets',
};

/** The tables whose `customFields` hold each entity's values. */
const TABLE: Record<CustomFieldEntity, string> = {
  CHANNEL: 'Channel',
  MESSAGE: 'Message',
  CLIENT_REQUEST: 'ClientRequest',
  SUPPORT_TICKET: 'SupportTicket',
};

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A real calendar date written YYYY-MM-DD, or null. */
function parseDate(value: unknown): Date | null {
  if (typeof value !== 'string') return null;
  const m = DATE.exec(value);
  if (!m) return null;
  const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return date.toISOString().slice(0, 10) === value ? date : null;
}

const isoDate = (date: Date) => date.toISOString().slice(0, 10);

/** Length as people count it. */
const characters = (text: string) => [...text].length;

/** The global id clients know a user by (`User.id`): base64 of `User:<uuid>`, as @pothos/plugin-relay encodes it. */
export const userGlobalId = (id: string) => Buffer.from(`User:${id}`).toString('base64');

/** The user uuid a USER value names (a global id or a raw uuid), or null. */
function userIdOf(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  if (isId(value)) return value.toLowerCase();
  const decoded = Buffer.from(value, 'base64').toString();
  if (!decoded.startsWith('User:')) return null;
  const id = decoded.slice('User:'.length);
  return isId(id) ? id.toLowerCase() : null;
}

/** "between 0 and 10", "at least 0", "at most 10", or "". */
function range(min: number | null, max: number | null, unit = ''): string {
  if (min !== null && max !== null) return ` between ${min} and ${max}${unit}`;
  if (min !== null) return ` of at least ${min}${unit}`;
  if (max !== null) return ` of at most ${max}${unit}`;
  return '';
}

/** The JSON object a write gives, or BAD_USER_INPUT. */
function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badInput('customFields', 'customFields must be a JSON object');
  return value as Record<string, unknown>;
}

export class CustomFieldService implements CustomFieldCheck {
  /** Active definitions by `organizationId:entity`: sends and writes read no definitions while cached. */
  private readonly cache: LRUCache<string, CustomFieldDefinition[]>;
  private readonly changes: AsyncIterableIterator<Topics['customFields:changed']>;
  private readonly stopReconnect: () => void;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: ParleyPubSub,
    cacheMs = DEFINITION_CACHE_MS,
  ) {
    this.cache = new LRUCache({ max: 10_000, ttl: Math.max(cacheMs, 1) });
    this.changes = pubsub.subscribe('customFields:changed');
    // Whatever was published while the connection was lost is gone: start over.
    this.stopReconnect = pubsub.onReconnect(() => this.cache.clear());
    void this.followChanges();
  }

  private async followChanges(): Promise<void> {
    for await (const { organizationId, entity } of this.changes) this.cache.delete(`${organizationId}:${entity}`);
  }

  async close(): Promise<void> {
    this.stopReconnect();
    await this.changes.return?.();
  }

  // -------------------------------------------------------------------------
  // Definitions

  /** The definitions of an entity, by position then key: any user of the organization reads them (forms need them). */
  list(viewer: Viewer, entity: CustomFieldEntity, includeArchived = false): Promise<CustomFieldDefinition[]> {
    return this.prisma.customFieldDefinition.findMany({
      where: { organizationId: viewer.organizationId, entity, ...(includeArchived ? {} : { archivedAt: null }) },
      orderBy: [{ position: 'asc' }, { key: 'asc' }],
    });
  }

  async create(viewer: Viewer, input: CustomFieldDefinitionInput): Promise<CustomFieldDefinition> {
    this.assertAdmin(viewer);
    if (!KEY.test(input.key)) throw badInput('key', 'key must be a letter followed by at most 39 letters, digits or underscores');
    const data = checkedDefinition({
      type: input.type,
      label: input.label,
      required: input.required ?? false,
      options: input.options ?? [],
      min: input.min ?? null,
      max: input.max ?? null,
      minDate: input.minDate ?? null,
      maxDate: input.maxDate ?? null,
      position: input.position ?? 0,
    });
    try {
      const created = await this.prisma.$transaction(async (tx) => {
        const active = await tx.customFieldDefinition.count({
          where: { organizationId: viewer.organizationId, entity: input.entity, archivedAt: null },
        });
        if (active >= DEFINITIONS_MAX) throw conflict(`An entity has at most ${DEFINITIONS_MAX} active custom fields`);
        const definition = await tx.customFieldDefinition.create({
          data: { organizationId: viewer.organizationId, entity: input.entity, key: input.key, ...data },
        });
        await this.audited(tx, viewer, 'customField.create', definition);
        return definition;
      });
      return created;
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw conflict(`A custom field "${input.key}" of ${ENTITY_NAME[input.entity]} exists (archived ones keep their key)`, {
          field: 'key',
        });
      }
      throw error;
    } finally {
      this.forget(viewer.organizationId, input.entity);
    }
  }

  /**
   * Changes a definition. Stored values are not touched (see the top of this
   * file); a type change is refused with CONFLICT once a stored value uses the key.
   */
  async update(viewer: Viewer, id: string, update: CustomFieldDefinitionUpdate): Promise<CustomFieldDefinition> {
    this.assertAdmin(viewer);
    assertId(id, 'Custom field definition');
    const current = await this.prisma.customFieldDefinition.findFirst({ where: { id, organizationId: viewer.organizationId } });
    if (!current) throw notFound('Custom field definition');
    if (current.archivedAt) throw conflict('This custom field is archived');
    const pick = <K extends keyof CustomFieldDefinitionUpdate, V>(
      key: K,
      now: V,
      convert: (v: NonNullable<CustomFieldDefinitionUpdate[K]>) => V,
    ) => {
      const value = update[key];
      if (value === undefined) return now;
      return value === null ? (null as V) : convert(value as NonNullable<CustomFieldDefinitionUpdate[K]>);
    };
    const type = update.type ?? current.type;
    const data = checkedDefinition({
      type,
      label: update.label ?? current.label,
      required: update.required ?? current.required,
      // Options only change when given; a type without options drops them.
      options: update.options ?? (type === current.type ? current.options : []),
      min: pick('min', type === current.type ? current.min : null, (v) => v),
      max: pick('max', type === current.type ? current.max : null, (v) => v),
      minDate: pick('minDate', type === current.type && current.minDate ? isoDate(current.minDate) : null, (v) => v),
      maxDate: pick('maxDate', type === current.type && current.maxDate ? isoDate(current.maxDate) : null, (v) => v),
      position: update.position ?? current.position,
    });
    try {
      return await this.prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT 1 FROM "CustomFieldDefinition" WHERE id = ${id}::uuid FOR UPDATE`;
        if (type !== current.type && (await this.inUse(tx, current))) {
          throw conflict(`Stored values use customFields.${current.key}; its type cannot change (archive it and define a new key)`, {
            field: 'type',
          });
        }
        const definition = await tx.customFieldDefinition.update({ where: { id }, data });
        await this.audited(tx, viewer, 'customField.update', definition, { from: describe(current) });
        return definition;
      });
    } finally {
      this.forget(viewer.organizationId, current.entity);
    }
  }

  /** Archives a definition: it stops validating and accepting writes; stored values stay as they are. */
  async archive(viewer: Viewer, id: string): Promise<CustomFieldDefinition> {
    this.assertAdmin(viewer);
    assertId(id, 'Custom field definition');
    const current = await this.prisma.customFieldDefinition.findFirst({ where: { id, organizationId: viewer.organizationId } });
    if (!current) throw notFound('Custom field definition');
    if (current.archivedAt) return current;
    try {
      return await this.prisma.$transaction(async (tx) => {
        const definition = await tx.customFieldDefinition.update({ where: { id }, data: { archivedAt: new Date() } });
        await this.audited(tx, viewer, 'customField.archive', definition);
        return definition;
      });
    } finally {
      this.forget(viewer.organizationId, current.entity);
    }
  }

  /** Whether any stored value of the definition's entity, in its organization, has its key (GIN-indexed: jsonb_path_ops serves @?). */
  private async inUse(tx: Prisma.TransactionClient, definition: CustomFieldDefinition): Promise<boolean> {
    const table = Prisma.raw(`"${TABLE[definition.entity]}"`);
    // The key is checked against KEY at creation, so it is safe inside a jsonpath string.
    const path = `$."${definition.key}"`;
    const rows = await tx.$queryRaw<unknown[]>`
      SELECT 1 FROM ${table} WHERE "organizationId" = ${definition.organizationId}::uuid AND "customFields" @? ${path}::jsonpath LIMIT 1`;
    return rows.length > 0;
  }

  private assertAdmin(viewer: Viewer): void {
    if (!isAdmin(viewer)) throw forbidden('Only organization owners and admins manage custom fields');
  }

  private audited(
    tx: Prisma.TransactionClient,
    viewer: Viewer,
    action: string,
    definition: CustomFieldDefinition,
    extra: Record<string, unknown> = {},
  ) {
    return audit(tx, {
      ...auditedBy(viewer),
      action,
      targetType: 'CustomFieldDefinition',
      targetId: definition.id,
      data: { ...describe(definition), ...extra },
    });
  }

  // -------------------------------------------------------------------------
  // Values

  /** The active definitions of an organization's entity, from a short per-process cache. */
  async definitions(organizationId: string, entity: CustomFieldEntity): Promise<CustomFieldDefinition[]> {
    const key = `${organizationId}:${entity}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const definitions = await this.prisma.customFieldDefinition.findMany({
      where: { organizationId, entity, archivedAt: null },
      orderBy: [{ position: 'asc' }, { key: 'asc' }],
    });
    this.cache.set(key, definitions);
    return definitions;
  }

  /** After a change (committed or not): this process forgets at once, the others when the signal arrives. */
  private forget(organizationId: string, entity: CustomFieldEntity): void {
    this.cache.delete(`${organizationId}:${entity}`);
    this.pubsub.publish('customFields:changed', { organizationId, entity }).catch(() => {});
  }

  async validate(organizationId: string, entity: CustomFieldEntity, value: unknown, previous?: unknown): Promise<Prisma.JsonObject | null> {
    if (value !== null && value !== undefined) asObject(value);
    checkCustomFields(value);
    const definitions = await this.definitions(organizationId, entity);
    // Free-form until the organization defines this entity's fields.
    if (definitions.length === 0) return (value ?? null) as Prisma.JsonObject | null;
    const given = (value ?? {}) as Record<string, unknown>;
    const stored = previous && typeof previous === 'object' && !Array.isArray(previous) ? (previous as Record<string, unknown>) : {};
    const byKey = new Map(definitions.map((d) => [d.key, d]));
    const out: Record<string, unknown> = {};
    const users: { key: string; id: string }[] = [];
    for (const [key, raw] of Object.entries(given)) {
      // null leaves a field out.
      if (raw === null) continue;
      // Untouched: kept as stored, whatever the definitions say now.
      if (Object.hasOwn(stored, key) && isDeepStrictEqual(stored[key], raw)) {
        out[key] = raw;
        continue;
      }
      const definition = byKey.get(key);
      const field = `customFields.${key}`;
      if (!definition) throw badInput(field, `${field} is not a custom field of ${ENTITY_NAME[entity]}`);
      out[key] = checkValue(field, definition, raw);
      if (definition.type === 'USER') users.push({ key, id: userIdOf(raw)! });
    }
    for (const definition of definitions) {
      if (definition.required && out[definition.key] === undefined) {
        throw badInput(`customFields.${definition.key}`, `customFields.${definition.key} is required`);
      }
    }
    if (users.length) {
      const found = await this.prisma.user.findMany({
        where: { id: { in: users.map((u) => u.id) }, organizationId, deactivatedAt: null },
        select: { id: true },
      });
      const active = new Set(found.map((u) => u.id));
      for (const { key, id } of users) {
        // Missing, deactivated and another organization's users read the same.
        if (!active.has(id)) throw badInput(`customFields.${key}`, `customFields.${key} must be an active user of the organization`);
        out[key] = userGlobalId(id);
      }
    }
    return value === null ? null : (out as Prisma.JsonObject);
  }
}

/** A definition's settings as the audit trail records them. */
function describe(d: CustomFieldDefinition) {
  return {
    entity: d.entity,
    key: d.key,
    label: d.label,
    type: d.type,
    required: d.required,
    options: d.options,
    min: d.min,
    max: d.max,
    minDate: d.minDate ? isoDate(d.minDate) : null,
    maxDate: d.maxDate ? isoDate(d.maxDate) : null,
    position: d.position,
  };
}

interface DefinitionSettings {
  type: CustomFieldType;
  label: string;
  required: boolean;
  options: readonly string[];
  min: number | null;
  max: number | null;
  minDate: string | null;
  maxDate: string | null;
  position: number;
}

/** A definition's settings checked as a whole (the same for create and update). Throws BAD_USER_INPUT. */
function checkedDefinition(s: DefinitionSettings) {
  const label = s.label.trim();
  if (!label || characters(label) > LABEL_MAX) throw badInput('label', `label must be 1 to ${LABEL_MAX} characters`);
  if (label.includes('\u0000')) throw badInput('label', 'label must not contain NUL (U+0000) characters');
  const choice = s.type === 'SINGLE_CHOICE' || s.type === 'MULTIPLE_CHOICE';
  const options = s.options.map((o) => o.trim());
  if (choice) {
    if (options.length === 0 || options.length > OPTIONS_MAX) throw badInput('options', `A choice field has 1 to ${OPTIONS_MAX} options`);
    for (const option of options) {
      if (!option || characters(option) > OPTION_MAX || option.includes('\u0000'))
        throw badInput('options', `Each option is 1 to ${OPTION_MAX} characters`);
    }
    if (new Set(options).size !== options.length) throw badInput('options', 'Options must be distinct');
  } else if (options.length) {
    throw badInput('options', `A ${s.type} field has no options`);
  }
  const bounded = s.type === 'NUMBER' || s.type === 'TEXT' || s.type === 'MULTIPLE_CHOICE';
  for (const [name, bound] of [
    ['min', s.min],
    ['max', s.max],
  ] as const) {
    if (bound === null) continue;
    if (!bounded) throw badInput(name, `A ${s.type} field has no ${name}; NUMBER, TEXT (length) and MULTIPLE_CHOICE (count) do`);
    if (!Number.isFinite(bound)) throw badInput(name, `${name} must be a finite number`);
    if (s.type !== 'NUMBER' && (!Number.isInteger(bound) || bound < 0)) throw badInput(name, `${name} must be a whole number, 0 or more`);
  }
  if (s.min !== null && s.max !== null && s.min > s.max) throw badInput('min', 'min must not be greater than max');
  let minDate: Date | null = null;
  let maxDate: Date | null = null;
  for (const [name, text] of [
    ['minDate', s.minDate],
    ['maxDate', s.maxDate],
  ] as const) {
    if (text === null) continue;
    if (s.type !== 'DATE') throw badInput(name, `Only DATE fields have ${name}`);
    const date = parseDate(text);
    if (!date) throw badInput(name, `${name} must be a date written YYYY-MM-DD`);
    if (name === 'minDate') minDate = date;
    else maxDate = date;
  }
  if (minDate && maxDate && minDate > maxDate) throw badInput('minDate', 'minDate must not be after maxDate');
  if (!Number.isInteger(s.position) || Math.abs(s.position) > 1_000_000) throw badInput('position', 'position must be a whole number');
  return { type: s.type, label, required: s.required, options, min: s.min, max: s.max, minDate, maxDate, position: s.position };
}

/** One value checked against its definition, as it is stored. USER values are checked against the users table by the caller. */
function checkValue(field: string, d: CustomFieldDefinition, value: unknown): unknown {
  switch (d.type) {
    case 'TEXT': {
      const max = d.max ?? TEXT_MAX;
      const length = typeof value === 'string' ? characters(value.trim()) : -1;
      if (length < (d.min ?? 0) || length > max) throw badInput(field, `${field} must be a text${range(d.min, max, ' characters')}`);
      return (value as string).trim();
    }
    case 'NUMBER':
      if (typeof value !== 'number' || !Number.isFinite(value) || (d.min !== null && value < d.min) || (d.max !== null && value > d.max))
        throw badInput(field, `${field} must be a number${range(d.min, d.max)}`);
      return value;
    case 'BOOLEAN':
      if (typeof value !== 'boolean') throw badInput(field, `${field} must be true or false`);
      return value;
    case 'DATE': {
      const date = parseDate(value);
      const min = d.minDate ? isoDate(d.minDate) : null;
      const max = d.maxDate ? isoDate(d.maxDate) : null;
      if (!date || (min !== null && (value as string) < min) || (max !== null && (value as string) > max)) {
        const bounds = min && max ? ` between ${min} and ${max}` : min ? ` on or after ${min}` : max ? ` on or before ${max}` : '';
        throw badInput(field, `${field} must be a date written YYYY-MM-DD${bounds}`);
      }
      return value;
    }
    case 'SINGLE_CHOICE':
      if (typeof value !== 'string' || !d.options.includes(value)) throw badInput(field, `${field} must be one of ${d.options.join(', ')}`);
      return value;
    case 'MULTIPLE_CHOICE': {
      const list = Array.isArray(value) ? (value as unknown[]) : null;
      const valid =
        list !== null &&
        list.every((v) => typeof v === 'string' && d.options.includes(v)) &&
        new Set(list).size === list.length &&
        list.length >= (d.min ?? 0) &&
        (d.max === null || list.length <= d.max);
      if (!valid) {
        throw badInput(field, `${field} must be a list of distinct options of ${d.options.join(', ')}${range(d.min, d.max, ' items')}`);
      }
      return list;
    }
    case 'USER':
      if (userIdOf(value) === null) throw badInput(field, `${field} must be an active user of the organization`);
      return value;
  }
}

/**
 * The ids of the organization's rows of `entity` whose `customFields`
 * contain `filter` (`"customFields" @> $filter`, served by the column's GIN
 * jsonb_path_ops index). Lists AND them with their own conditions. At most
 * `limit` ids; more is BAD_USER_INPUT, so a list never silently drops rows.
 */
export async function idsWithCustomFields(
  prisma: PrismaClient,
  organizationId: string,
  entity: Exclude<CustomFieldEntity, 'MESSAGE'>,
  filter: unknown,
  limit = FILTER_MATCHES_MAX,
): Promise<string[]> {
  const object = checkedFilter(filter);
  const table = Prisma.raw(`"${TABLE[entity]}"`);
  const rows = await prisma.$queryRaw<{ id: string }[]>`
    SELECT id FROM ${table} WHERE "organizationId" = ${organizationId}::uuid AND "customFields" @> ${JSON.stringify(object)}::jsonb
    LIMIT ${limit + 1}`;
  if (rows.length > limit) {
    throw badInput('filter.customFields', `filter.customFields matches more than ${limit} rows; add conditions to narrow it`);
  }
  return rows.map((r) => r.id);
}

/** Most rows a customFields filter may match in one organization's list. */
export const FILTER_MATCHES_MAX = 10_000;

/** A list filter on `customFields`: a JSON object (containment). */
export function checkedFilter(filter: unknown): Record<string, unknown> {
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw badInput('filter.customFields', 'filter.customFields must be a JSON object');
  }
  if (JSON.stringify(filter).length > 2000) throw badInput('filter.customFields', 'filter.customFields is too long');
  // Every list reads a key the same way: a value to match, never null (an absent key and a null one are the same when written).
  for (const [key, value] of Object.entries(filter)) {
    if (value === null) throw badInput('filter.customFields', `filter.customFields.${key} must not be null`);
  }
  return filter as Record<string, unknown>;
}

/** The top-level keys whose values differ between two customFields objects, sorted (what a change record names). */
export function changedKeys(before: unknown, after: unknown): string[] {
  const a = before && typeof before === 'object' ? (before as Record<string, unknown>) : {};
  const b = after && typeof after === 'object' ? (after as Record<string, unknown>) : {};
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !isDeepStrictEqual(a[k], b[k])).sort();
}
