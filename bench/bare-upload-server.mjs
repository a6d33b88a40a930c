// The bare reference for bench/upload.ts (issue 12): what a hand-written
// upload endpoint costs with no GraphQL, no authentication, no type
// inspection, no database and no quota. A `node:http` server takes the same
// multipart POST /graphql that Parley takes, streams the file part with busboy
// (@fastify/busboy, the parser Yoga's fetch ponyfill uses underneath) into a
// fresh file in a temp directory under the same file-size limit, fsyncs and
// closes it, and answers `{"data":{"uploadFile":{"id":"…","size":N}}}`.
// Nothing holds a whole file in memory, so its RSS should stay flat under load.
// A JSON POST /graphql (the benchmark's probe) gets a fixed tiny answer from
// the same event loop, so the probe shows how long uploads keep that loop busy.
// Each file is deleted after its answer is sent, so long runs do not fill the
// disk (Parley keeps its files; deleting a synced file is cheap).
//
// Plain JavaScript, run as `node bench/bare-upload-server.mjs` (no tsx).
// Environment: PORT, HOST (default 127.0.0.1), UPLOAD_DIR (required),
// MAX_FILE_BYTES (default 10 MiB, as UPLOAD_MAX_FILE_BYTES).
import { Buffer } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout } from 'node:timers';

const require = createRequire(import.meta.url);
const Busboy = require('@fastify/busboy');

const port = Number(process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const dir = process.env.UPLOAD_DIR;
const maxFileBytes = Number(process.env.MAX_FILE_BYTES ?? 10 * 1024 * 1024);
if (!dir) {
  console.error('UPLOAD_DIR is required');
  process.exit(2);
}

const PROBE_REPLY = JSON.stringify({ data: { viewer: { id: 'bare' } } });

function reply(res, status, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const failed = (message) => ({ errors: [{ message }] });

/** Streams one file part into a fresh file, fsyncs it (`flush`) and closes it; its id, size and path. */
async function store(stream) {
  const id = randomUUID();
  const path = join(dir, id);
  const out = createWriteStream(path, { flags: 'wx', flush: true });
  try {
    await pipeline(stream, out);
    if (stream.truncated) throw new Error(`The file is too large: at most ${maxFileBytes} bytes`);
    return { id, size: out.bytesWritten, path };
  } catch (error) {
    await unlink(path).catch(() => {});
    throw error;
  }
}

function upload(req, res) {
  let bb;
  try {
    bb = new Busboy({ headers: req.headers, limits: { fileSize: maxFileBytes, files: 1, fields: 16, fieldSize: 1024 * 1024 } });
  } catch (error) {
    reply(res, 400, failed(error.message));
    return;
  }
  const stored = [];
  let answered = false;
  const answer = async (error) => {
    if (answered) return;
    answered = true;
    req.unpipe(bb);
    const results = await Promise.allSettled(stored);
    const files = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const problem = error ?? results.find((r) => r.status === 'rejected')?.reason;
    if (problem) reply(res, 400, failed(problem.message));
    else if (files.length !== 1) reply(res, 400, failed('expected one file part'));
    else reply(res, 200, { data: { uploadFile: { id: files[0].id, size: files[0].size } } });
    for (const file of files) await unlink(file.path).catch(() => {});
  };
  bb.on('file', (_name, stream) => stored.push(store(stream)));
  bb.on('field', () => {});
  bb.on('finish', () => void answer());
  bb.on('error', (error) => void answer(error));
  req.on('error', (error) => void answer(error));
  req.pipe(bb);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/ready') return reply(res, 200, '{"ready":true}');
  if (req.method !== 'POST' || req.url !== '/graphql') return reply(res, 404, failed('not found'));
  if ((req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data')) return upload(req, res);
  // The probe: read the (small) body, answer a fixed result.
  req.resume();
  req.on('end', () => reply(res, 200, PROBE_REPLY));
});
server.keepAliveTimeout = 65_000;
server.listen(port, host);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 5_000).unref();
  });
}
