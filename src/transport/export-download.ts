import type { Logger } from 'pino';
import type { ExportService } from '../services/exports.ts';
import { contentDisposition, signedDownloadRoute } from './files.ts';

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
  return signedDownloadRoute({
    prefix: '/exports/',
    what: 'export',
    safeHeaders: SAFE_HEADERS,
    log,
    serve: async (req, reply) => {
      const grant = exports.urls.verify(req.url ?? '/');
      if (grant === 'expired') return reply.error(410, 'This link has expired; ask the API for a fresh URL');
      if (grant === 'invalid') return reply.error(404, 'Not found');
      const file = await exports.openDownload(grant);
      if (!file) return reply.error(404, 'Not found');
      await reply.stream(
        {
          'content-type': file.row.contentType ?? 'application/octet-stream',
          'content-length': file.size,
          'content-disposition': contentDisposition('attachment', file.row.fileName ?? `${file.row.id}`),
          'cache-control': 'private, no-store',
        },
        file.body,
      );
    },
  });
}
