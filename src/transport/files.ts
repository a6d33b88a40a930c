import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { AttachmentService, Variant } from '../services/attachments.ts';
import { storageKey } from '../services/attachments.ts';
import type { FileUrls } from '../services/files/urls.ts';
import type { Clock } from '../services/clock.ts';

/**
 * Headers on every file response, beside those every response has
 * (security-headers.ts: nosniff, no framing, no referrer). The content was
 * checked when uploaded; these make sure a browser treats it as nothing else:
 * no script, no plugins, and (for anything but an image) a download rather
 * than a page of ours.
 */
const SAFE_HEADERS = {
  'content-security-policy': "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox",
  'cross-origin-opener-policy': 'same-origin',
} as const;

/** RFC 6266/8187 Content-Disposition with an ASCII fallback and the UTF-8 name. */
export function contentDisposition(type: 'inline' | 'attachment', name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  const utf8 = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${type}; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

/** Answers a download request: an error as JSON, or a stream with its headers (its body dropped for HEAD). */
export interface DownloadReply {
  error(status: number, message: string): void;
  stream(headers: Record<string, string | number>, body: NodeJS.ReadableStream & { destroy(): void }): Promise<void>;
}

/**
 * The route around a signed download (`/files/`, `/exports/`): GET and HEAD
 * only, every answer with `safeHeaders`, and a failure while serving logged
 * and answered 500 (or the connection cut once the body has begun).
 */
export function signedDownloadRoute(options: {
  prefix: string;
  what: string;
  safeHeaders: Record<string, string>;
  log: Logger;
  serve: (req: IncomingMessage, reply: DownloadReply) => Promise<void>;
}) {
  const { prefix, what, safeHeaders, log, serve } = options;
  const replyTo = (req: IncomingMessage, res: ServerResponse): DownloadReply => ({
    error(status, message) {
      const body = JSON.stringify({ error: message });
      res.writeHead(status, {
        ...safeHeaders,
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    },
    async stream(headers, body) {
      res.writeHead(200, { ...safeHeaders, ...headers });
      if (req.method === 'HEAD') {
        body.destroy();
        res.end();
        return;
      }
      await pipeline(body, res);
    },
  });
  return {
    /** Answers the request if it is under `prefix`; false leaves it to the next route. */
    handle(req: IncomingMessage, res: ServerResponse): boolean {
      if (!req.url?.startsWith(prefix)) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return true;
      }
      serve(req, replyTo(req, res)).catch((error: unknown) => {
        log.error({ err: error, url: req.url?.split('?')[0] }, `${what} download failed`);
        if (!res.headersSent) replyTo(req, res).error(500, `The ${what} could not be read; try again`);
        else res.destroy();
      });
      return true;
    },
  };
}

/**
 * `GET /files/<id>/<variant>?…`: serves a file to the holder of a signed URL
 * (FileUrls), after checking on every request that the URL's user may still
 * read the file. Every refusal is the same 404 (or 410 once the URL expired,
 * so a client knows to ask for a fresh one), never a hint of what exists.
 */
export function createFileRoutes(deps: { attachments: AttachmentService; urls: FileUrls; clock: Clock; log: Logger }) {
  const { attachments, urls, clock, log } = deps;
  return signedDownloadRoute({
    prefix: '/files/',
    what: 'file',
    safeHeaders: SAFE_HEADERS,
    log,
    serve: async (req, reply) => {
      const grant = urls.verify(req.url ?? '/');
      if (grant === 'expired') return reply.error(410, 'This link has expired; ask the API for a fresh URL');
      if (grant === 'invalid') return reply.error(404, 'Not found');
      const attachment = await attachments.readableBy(grant.userId, grant.organizationId, grant.attachmentId);
      const variant = grant.variant as Variant;
      if (!attachment || (variant !== 'original' && !attachment.thumbnails.includes(Number(variant)))) {
        return reply.error(404, 'Not found');
      }
      const stored = await attachments.store.get(storageKey(attachment, variant));
      if (!stored) return reply.error(404, 'Not found');
      const image = attachment.kind === 'IMAGE';
      const maxAge = Math.max(0, grant.expires - Math.ceil(clock.now().getTime() / 1000));
      await reply.stream(
        {
          // Text was checked to be UTF-8 when uploaded; saying so keeps a browser from guessing another charset.
          'content-type':
            variant !== 'original'
              ? 'image/webp'
              : attachment.kind === 'TEXT'
                ? `${attachment.contentType}; charset=utf-8`
                : attachment.contentType,
          'content-length': stored.size,
          'content-disposition': contentDisposition(image ? 'inline' : 'attachment', attachment.name),
          'cache-control': `private, max-age=${maxAge}`,
          etag: `"${attachment.sha256.slice(0, 32)}-${variant}"`,
        },
        stored.body,
      );
    },
  });
}
