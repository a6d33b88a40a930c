import { createHash, randomBytes } from 'node:crypto';
import type { ApiKey, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { assertId, mayManageIntegrations } from './access.ts';
import { audit } from './audit.ts';
import { badInput, forbidden, notFound } from './errors.ts';
import type { Viewer } from './viewer.ts';

/**
 * Organization API keys: what a host product's backend authenticates with to
 * call the integration operations (upsertLinkedEntities, ...). A key is
 * `parley_` and 43 characters of base64url (32 random bytes); it is shown
 * once, when created, and only its SHA-256 is stored (the key is random, so a
 * slow hash would add nothing), with its first characters to tell keys apart.
 * Owners and admins create, list and revoke keys.
 */

/** How every key begins; tells a key from a JWT in `Authorization: Bearer`. */
export const API_KEY_PREFIX = 'parley_';
/** The characters of a key kept in the clear, to tell keys apart in lists. */
const SHOWN_CHARS = API_KEY_PREFIX.length + 6;
/** lastUsedAt is written at most this often per key: a request does not cost a write. */
const LAST_USED_RESOLUTION_SECONDS = 60;
const NAME_MAX = 100;

/** Who calls an integration operation: an organization, through one of its keys. */
export interface Integration {
  organizationId: string;
  apiKeyId: string;
}

export const isApiKey = (token: string): boolean => token.startsWith(API_KEY_PREFIX);
const hashOf = (key: string) => createHash('sha256').update(key).digest('hex');

type Query = { select?: Prisma.ApiKeySelect; include?: Prisma.ApiKeyInclude };

export class ApiKeyService {
  constructor(private readonly prisma: PrismaClient) {}

  private assertAdmin(viewer: Viewer) {
    if (!mayManageIntegrations(viewer)) throw forbidden('Only organization owners and admins manage API keys');
  }

  /** A new key: the row, and the key itself, which is never shown again. */
  async create(viewer: Viewer, name: string): Promise<{ apiKey: ApiKey; secret: string }> {
    this.assertAdmin(viewer);
    const trimmed = name.trim();
    if (!trimmed || trimmed.length > NAME_MAX) throw badInput('name', `name must be 1 to ${NAME_MAX} characters`);
    const secret = API_KEY_PREFIX + randomBytes(32).toString('base64url');
    const apiKey = await this.prisma.$transaction(async (tx) => {
      const row = await tx.apiKey.create({
        data: {
          organizationId: viewer.organizationId,
          name: trimmed,
          prefix: secret.slice(0, SHOWN_CHARS),
          hash: hashOf(secret),
          createdById: viewer.id,
        },
      });
      await audit(tx, {
        organizationId: viewer.organizationId,
        actorId: viewer.id,
        action: 'apiKey.create',
        targetType: 'ApiKey',
        targetId: row.id,
        data: { name: trimmed },
      });
      return row;
    });
    return { apiKey, secret };
  }

  /** The organization's keys, for its admins (the schema pages them). */
  listWhere(viewer: Viewer): Prisma.ApiKeyWhereInput {
    this.assertAdmin(viewer);
    return { organizationId: viewer.organizationId };
  }

  /** Revokes a key; revoking a revoked key changes nothing and answers the same. */
  async revoke(viewer: Viewer, id: string, query: Query = {}): Promise<ApiKey> {
    this.assertAdmin(viewer);
    assertId(id, 'API key');
    return this.prisma.$transaction(async (tx) => {
      const revoked = await tx.apiKey.updateMany({
        where: { id, organizationId: viewer.organizationId, revokedAt: null },
        data: { revokedAt: new Date() },
      });
      const key = await tx.apiKey.findFirst({ ...query, where: { id, organizationId: viewer.organizationId } });
      if (!key) throw notFound('API key');
      if (revoked.count > 0) {
        await audit(tx, {
          organizationId: viewer.organizationId,
          actorId: viewer.id,
          action: 'apiKey.revoke',
          targetType: 'ApiKey',
          targetId: id,
        });
      }
      return key as ApiKey;
    });
  }

  /**
   * The integration a key stands for, or null for an unknown or revoked key.
   * One statement: the lookup by hash, and lastUsedAt when it is older than
   * LAST_USED_RESOLUTION_SECONDS (so most requests write nothing).
   */
  async authenticate(key: string): Promise<Integration | null> {
    if (!isApiKey(key) || key.length > 200) return null;
    const rows = await this.prisma.$queryRaw<{ id: string; organizationId: string }[]>`
      WITH k AS (
        SELECT id, "organizationId", "lastUsedAt" FROM "ApiKey" WHERE hash = ${hashOf(key)} AND "revokedAt" IS NULL
      ), touched AS (
        UPDATE "ApiKey" a SET "lastUsedAt" = now() FROM k
        WHERE a.id = k.id AND (k."lastUsedAt" IS NULL OR k."lastUsedAt" < now() - ${LAST_USED_RESOLUTION_SECONDS}::int * interval '1 second')
      )
      SELECT id, "organizationId" FROM k`;
    const row = rows[0];
    return row ? { organizationId: row.organizationId, apiKeyId: row.id } : null;
  }
}
