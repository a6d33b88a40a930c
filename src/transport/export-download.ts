import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { ExportService } from '../services/exports.ts';
import { contentDisposition } from './files.ts';

/** An export is data to save, never a page of ours: no script, no plugins, no framing, even if a browser were to render it. */
const SAFE_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; sandbox",
  'cross-origin-opener-policy': 'same-origin',
} as const;

/**
 * `GET /exports/<id>?u=&e=&s=`: an export's file for the holder of its signed
 * URL (`Export.downloadUrl`), after checking on every request that the URL's
 * user is still the export's requester, still active, and still reads what
 * the export holds (`ExportService.openDownload`). Every refusal is the same
 * 404 (410 once the URL expired, so a client asks for a fresh one), and the
 * file always comes as an attachment.
 */
export function createExportDownloadRoute(deps: { exports: ExportService; log: Logger }) {
  const { exports, log } = deps;

  const answer = (res: ServerResponse, status: number, message: string) => {
    const body = JSON.stringify({ error: message });
    res.writeHead(status, {
      ...SAFE_HEADERS,
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  };

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const grant = exports.urls.verify(req.url ?? '/');
    if (grant === 'expired') return answer(res, 410, 'This link has expired; ask the API for a fresh URL');
    if (grant === 'invalid') return answer(res, 404, 'Not found');
    const file = await exports.openDownload(grant);
    if (!file) return answer(res, 404, 'Not found');
    res.writeHead(200, {
      ...SAFE_HEADERS,
      'content-type': file.row.contentType ?? 'application/octet-stream',
      'content-length': file.size,
      'content-disposition': contentDisposition('attachment', file.row.fileName ?? `${file.row.id}`),
      'cache-control': 'private, no-store',
    });
    if (req.method === 'HEAD') {
      file.body.destroy();
      res.end();
      return;
    }
    await pipeline(file.body, res);
  };

  return {
    /** Answers the request if it is an export download; false leaves it to the next route. */
    handle(req: IncomingMessage, res: ServerResponse): boolean {
      if (!req.url?.startsWith('/exports/')) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return true;
      }
      serve(req, res).catch((error: unknown) => {
        log.error({ err: error, url: req.url?.split('?')[0] }, 'export download failed');
        if (!res.headersSent) answer(res, 500, 'The export could not be read; try again');
        else res.destroy();
      });
      return true;
    },
  };
}
