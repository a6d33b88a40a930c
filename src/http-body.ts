import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Refuses a request body larger than `maxBytes` before anything reads it, by
 * its Content-Length: Node's parser never delivers more body than that
 * header announces, so the header is the whole check. Yoga's own limit
 * (turned off in app.ts) instead pipes every body through a counting stream,
 * which cost about a third of a small request's CPU. A body without a length
 * (chunked) is refused with 411; GraphQL clients send JSON with a length.
 * Answers the request and returns true when it refused it.
 */
export function refuseBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): boolean {
  if (req.headers['transfer-encoding'] !== undefined) {
    return refuse(res, 411, 'Send the request body with a Content-Length header, not chunked');
  }
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > maxBytes) {
    return refuse(res, 413, `The request body is too large: at most ${maxBytes} bytes`);
  }
  return false;
}

/** Whether a request is a multipart form (a GraphQL upload). */
export const isMultipart = (req: IncomingMessage): boolean =>
  req.headers['content-type']?.toLowerCase().startsWith('multipart/form-data') ?? false;

/** Why an upload is refused from its headers alone. */
export type UploadRefusal = { reason: 'anonymous' } | { reason: 'rate'; retryAfterMs: number; message: string };

/**
 * Uploads are for signed-in users within their upload limit, so a multipart
 * request that is anonymous, or whose user has no uploads left, is refused
 * before a byte of its body is read or buffered (the checks a resolver or the
 * write limits make would come after the whole form was parsed). Resolves
 * true when it answered the request.
 */
export async function refuseUpload(
  req: IncomingMessage,
  res: ServerResponse,
  check: (authorization: string | undefined) => Promise<UploadRefusal | null>,
): Promise<boolean> {
  const refusal = await check(req.headers.authorization);
  if (!refusal) return false;
  if (refusal.reason === 'anonymous') {
    return refuse(res, 401, 'Sign in first: send a valid token as "Authorization: Bearer <token>" with uploads', 'UNAUTHENTICATED');
  }
  const seconds = Math.ceil(refusal.retryAfterMs / 1000);
  return refuse(
    res,
    429,
    refusal.message,
    'RATE_LIMITED',
    { limit: 'uploads', retryAfterMs: refusal.retryAfterMs },
    { 'retry-after': String(seconds) },
  );
}

function refuse(
  res: ServerResponse,
  status: number,
  message: string,
  code = 'BAD_USER_INPUT',
  extensions: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): true {
  const body = JSON.stringify({ errors: [{ message, extensions: { code, ...extensions } }] });
  // The unread body stays on the connection: close it rather than read it.
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
    ...headers,
  });
  res.end(body);
  return true;
}
