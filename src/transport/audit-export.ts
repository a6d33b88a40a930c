import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { encodeGlobalID } from '@pothos/plugin-relay';
import type { Logger } from 'pino';
import type { AuditLog } from '../generated/prisma/client.ts';
import { isAdmin } from '../services/access.ts';
import type { AuditFilter, AuditService } from '../services/audit.ts';
import { DomainError } from '../services/errors.ts';
import type { Viewer } from '../services/viewer.ts';
import { bearerToken } from '../schema/context.ts';

/** Longest `action` parameter, as `auditEvents(filter: { action })` allows. */
const ACTION_MAX = 100;

/** One entry as a line of the export: the fields and global IDs `auditEvents` shows. */
function line(entry: AuditLog): string {
  return `${JSON.stringify({
    id: encodeGlobalID('AuditEvent', entry.id),
    action: entry.action,
    actorId: entry.actorId === null ? null : encodeGlobalID('User', entry.actorId),
    targetType: entry.targetType,
    targetId: encodeGlobalID(entry.targetType, entry.targetId),
    data: entry.data,
    createdAt: entry.createdAt.toISOString(),
  })}\n`;
}

/** A date parameter: absent is null, anything but an ISO instant is refused. */
function instant(params: URLSearchParams, name: 'from' | 'to'): Date | null {
  const value = params.get(name);
  if (value === null) return null;
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(date.getTime())) {
    throw new DomainError('BAD_USER_INPUT', `${name} must be an ISO 8601 date-time`, { field: name });
  }
  return date;
}

/**
 * `GET /audit/export?from=&to=&action=` with an admin's bearer token: the
 * organization's audit trail as NDJSON, oldest first, streamed in batches so
 * a year of entries costs the server one batch of memory. The same rules as
 * `auditEvents`: owners and admins only, scoped to their organization.
 */
export function createAuditExportRoute(deps: {
  viewerFromToken: (token: string) => Promise<Viewer | null>;
  audit: AuditService;
  log: Logger;
}) {
  const { viewerFromToken, audit, log } = deps;

  const answer = (res: ServerResponse, status: number, code: string, message: string) => {
    const body = JSON.stringify({ error: message, code });
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const serve = async (req: IncomingMessage, res: ServerResponse, params: URLSearchParams) => {
    const token = bearerToken(req.headers.authorization);
    const viewer = token === null ? null : await viewerFromToken(token);
    if (!viewer) return answer(res, 401, 'UNAUTHENTICATED', 'Send an admin\u2019s access token as Authorization: Bearer <token>');
    if (!isAdmin(viewer)) return answer(res, 403, 'FORBIDDEN', 'Only organization owners and admins export the audit trail');
    const action = params.get('action');
    if (action !== null && action.length > ACTION_MAX)
      return answer(res, 400, 'BAD_USER_INPUT', `action is at most ${ACTION_MAX} characters`);
    let filter: AuditFilter;
    let batches: AsyncGenerator<AuditLog[]>;
    let first: IteratorResult<AuditLog[]>;
    try {
      filter = { target: null, actorId: null, action, from: instant(params, 'from'), to: instant(params, 'to') };
      batches = audit.batches(viewer, filter);
      // The first batch before the headers: a refused filter is still a 400, not a broken stream.
      first = await batches.next();
    } catch (error) {
      if (error instanceof DomainError && error.code === 'BAD_USER_INPUT') return answer(res, 400, error.code, error.message);
      throw error;
    }
    res.writeHead(200, {
      'content-type': 'application/x-ndjson; charset=utf-8',
      'cache-control': 'no-store',
      'content-disposition': `attachment; filename="audit-${new Date().toISOString().slice(0, 10)}.ndjson"`,
    });
    for (let next = first; !next.done; next = await batches.next()) {
      // A client that went away stops the export: no more batches are read.
      if (res.destroyed) return void (await batches.return(undefined));
      if (!res.write(next.value.map(line).join(''))) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    res.end();
  };

  return {
    /** Answers the request if it is the audit export; false leaves it to the next route. */
    handle(req: IncomingMessage, res: ServerResponse): boolean {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== '/audit/export') return false;
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' }).end();
        return true;
      }
      serve(req, res, url.searchParams).catch((error: unknown) => {
        log.error({ err: error }, 'audit export failed');
        if (!res.headersSent) answer(res, 500, 'INTERNAL_SERVER_ERROR', 'The export failed; try again');
        else res.destroy();
      });
      return true;
    },
  };
}
