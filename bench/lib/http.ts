import { request, type Agent } from 'node:http';

export interface Reply {
  status: number;
  text: string;
}

/**
 * POSTs a JSON body to a loopback server on a keep-alive agent. A server
 * closes a connection idle for its keep-alive timeout (5 s in Node), and a
 * request sent on it at that moment fails with a reset; such a request is
 * sent once more on a new connection, as Node's documentation advises (every
 * body posted here is safe to repeat: sends carry their clientMessageId).
 */
export function postJson(agent: Agent, port: number, path: string, headers: Record<string, string>, body: string, retried = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (!retried && req.reusedSocket && error.code === 'ECONNRESET') resolve(postJson(agent, port, path, headers, body, true));
      else reject(error);
    });
    req.end(body);
  });
}
