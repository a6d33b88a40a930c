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

function refuse(res: ServerResponse, status: number, message: string): true {
  const body = JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_USER_INPUT', http: { status } } }] });
  // The unread body stays on the connection: close it rather than read it.
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
  return true;
}
