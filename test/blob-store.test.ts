// The attachment storage drivers (issue 12, §3): the same contract against the
// filesystem and against an S3-compatible server started here (s3rver), then
// what only one driver promises (fs: key checks, atomic replace, empty
// directories removed; s3: prefixes, batched deletes, a bounded check).
// No database: both lanes run it in a few seconds.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBlobStore } from '../src/services/files/blob-stores.ts';
import { FsBlobStore } from '../src/services/files/fs-store.ts';
import { S3BlobStore } from '../src/services/files/s3-store.ts';
import type { BlobStore } from '../src/services/files/storage.ts';
import { startS3Server, type LocalS3 } from './helpers/s3-server.ts';

const MB = 1024 * 1024;

/** A key as the attachment service makes them: `<organization>/<attachment>/<variant>`. */
const newKey = (variant = 'original') => `${randomUUID()}/${randomUUID()}/${variant}`;

async function read(store: BlobStore, key: string): Promise<{ bytes: Buffer; size: number } | null> {
  const got = await store.get(key);
  return got && { bytes: await buffer(got.body), size: got.size };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Driver {
  name: 'fs' | 's3';
  start(): Promise<{ store: BlobStore; stop(): Promise<void> }>;
}

const drivers: Driver[] = [
  {
    name: 'fs',
    async start() {
      const dir = await mkdtemp(join(tmpdir(), 'parley-blobs-'));
      const store = createBlobStore({ driver: 'fs', dir: join(dir, 'files') });
      return {
        store,
        async stop() {
          await store.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 's3',
    async start() {
      const server = await startS3Server();
      const store = createBlobStore(server.config);
      return {
        store,
        async stop() {
          await store.close();
          await server.stop();
        },
      };
    },
  },
];

describe.each(drivers)('BlobStore contract: $name driver', (driver) => {
  let store: BlobStore;
  let stop: () => Promise<void>;
  beforeAll(async () => {
    ({ store, stop } = await driver.start());
  });
  afterAll(async () => {
    await stop?.();
  });

  it('is the driver configuration chose, and its check passes', async () => {
    expect(store.driver).toBe(driver.name);
    await store.check();
  });

  it('gives back the bytes it stored, with their size', async () => {
    const key = newKey();
    const bytes = randomBytes(100_000);
    await store.put(key, bytes, 'application/octet-stream');
    const got = await read(store, key);
    expect(got?.size).toBe(bytes.length);
    expect(got?.bytes.equals(bytes)).toBe(true);
  });

  it('stores a local file from a stream (putFile: exports), replacing what the key held', async () => {
    const key = `exports/${randomUUID()}/${randomUUID()}`;
    const dir = await mkdtemp(join(tmpdir(), 'parley-putfile-'));
    try {
      const path = join(dir, 'export');
      const bytes = randomBytes(3 * MB + 17);
      await writeFile(path, bytes);
      await store.put(key, Buffer.from('older'), 'text/plain');
      await store.putFile(key, path, 'application/x-ndjson');
      const got = await read(store, key);
      expect(got?.size).toBe(bytes.length);
      expect(got?.bytes.equals(bytes)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stores an empty body', async () => {
    const key = newKey();
    await store.put(key, Buffer.alloc(0), 'text/plain');
    expect(await read(store, key)).toEqual({ bytes: Buffer.alloc(0), size: 0 });
  });

  it('answers null for a key that holds nothing', async () => {
    expect(await store.get(newKey())).toBeNull();
  });

  it('deletes several keys at once, keys that hold nothing included, and leaves the others', async () => {
    const organization = randomUUID();
    const attachment = randomUUID();
    const original = `${organization}/${attachment}/original`;
    const thumb = `${organization}/${attachment}/thumb-320`;
    const other = `${organization}/${randomUUID()}/original`;
    await Promise.all([original, thumb, other].map((key) => store.put(key, Buffer.from(key), 'text/plain')));
    await store.delete([original, thumb, newKey(), `${organization}/${attachment}/thumb-1280`]);
    expect(await store.get(original)).toBeNull();
    expect(await store.get(thumb)).toBeNull();
    expect((await read(store, other))?.bytes.toString()).toBe(other);
    // Deleting again, or nothing, is not an error either.
    await store.delete([original, thumb]);
    await store.delete([]);
  });

  it('replaces what a key held on a second put', async () => {
    const key = newKey();
    await store.put(key, Buffer.from('first version, longer than the second'), 'text/plain');
    await store.put(key, Buffer.from('second'), 'text/plain');
    const got = await read(store, key);
    expect(got).toEqual({ bytes: Buffer.from('second'), size: 6 });
  });

  it('takes concurrent puts of different keys', async () => {
    const organization = randomUUID();
    const items = Array.from({ length: 24 }, (_, i) => ({
      // Some share an attachment directory (variants), most do not.
      key: `${organization}/${i % 3 === 0 ? 'shared' : randomUUID()}/v${i}`,
      bytes: randomBytes(20_000 + i),
    }));
    await Promise.all(items.map(({ key, bytes }) => store.put(key, bytes, 'application/octet-stream')));
    const got = await Promise.all(items.map(({ key }) => read(store, key)));
    got.forEach((g, i) => expect(g?.bytes.equals(items[i]!.bytes)).toBe(true));
    await store.delete(items.map(({ key }) => key));
    expect(await Promise.all(items.map(({ key }) => store.get(key)))).toEqual(items.map(() => null));
  });

  it('stores and streams a 10 MB object', async () => {
    const key = newKey();
    const bytes = randomBytes(10 * MB);
    await store.put(key, bytes, 'application/pdf');
    const got = await store.get(key);
    expect(got?.size).toBe(10 * MB);
    const back = await buffer(got!.body);
    expect(back.length).toBe(10 * MB);
    expect(sha256(back)).toBe(sha256(bytes));
    await store.delete([key]);
  });
});

describe('fs driver', () => {
  let dir: string;
  let root: string;
  let store: FsBlobStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-blobs-fs-'));
    root = join(dir, 'files');
    store = new FsBlobStore(root);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates its root on first use, readable by this user only', async () => {
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
    await store.check();
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    // check() leaves nothing behind.
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses keys that are not id segments, before touching the disk', async () => {
    const outside = join(dir, 'outside');
    const refused = [
      '../outside',
      '../../etc/passwd',
      'a/../../outside',
      'a/../b',
      './a',
      'a/./b',
      '/etc/passwd',
      `${dir}/outside`,
      'a//b',
      'a/b/',
      '/a',
      '',
      'a\\..\\b',
      'a/b.webp',
      '..',
      '.',
      'a/b\0c',
      'a/%2e%2e/b',
      'ａ/b',
    ];
    for (const key of refused) {
      await expect(store.put(key, Buffer.from('x'), 'text/plain'), key).rejects.toThrow(/key/i);
      await expect(store.get(key), key).rejects.toThrow(/key/i);
      await expect(store.delete([key]), key).rejects.toThrow(/key/i);
    }
    // A refused key in a batch refuses the whole delete.
    const kept = newKey();
    await store.put(kept, Buffer.from('kept'), 'text/plain');
    await expect(store.delete([kept, '../outside'])).rejects.toThrow(/key/i);
    expect((await read(store, kept))?.bytes.toString()).toBe('kept');
    await expect(stat(outside)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat('/etc/passwd/x')).rejects.toBeTruthy();
  });

  it('replaces a file atomically: a reader sees the old bytes or the new, whole, never a part', async () => {
    const key = newKey();
    const path = store.pathOf(key);
    const [older, newer] = [Buffer.alloc(10 * MB, 'a'), Buffer.alloc(10 * MB, 'b')];
    await store.put(key, older, 'application/pdf');

    const created: string[] = [];
    const watcher: FSWatcher = watch(dirname(path), (_event, name) => name && created.push(String(name)));
    let writing = true;
    const seen = { older: 0, newer: 0 };
    const reader = (async () => {
      while (writing) {
        const bytes = await readFile(path);
        if (bytes.equals(older)) seen.older++;
        else if (bytes.equals(newer)) seen.newer++;
        else throw new Error(`a reader saw ${bytes.length} bytes that are neither version`);
      }
    })();
    try {
      await store.put(key, newer, 'application/pdf');
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      writing = false;
      await reader;
      watcher.close();
    }
    expect(seen.older + seen.newer).toBeGreaterThan(0);
    expect((await readFile(path)).equals(newer)).toBe(true);
    // The bytes went to a temp file of another name in the same directory, renamed into place…
    const temps = [...new Set(created)].filter((name) => name !== 'original');
    expect(temps.length).toBeGreaterThan(0);
    expect(temps.every((name) => name.startsWith('original.') && name.endsWith('.tmp'))).toBe(true);
    // …and none is left behind.
    expect(await readdir(dirname(path))).toEqual(['original']);
  });

  it('a first put is atomic too: the final name appears with all its bytes', async () => {
    const key = newKey();
    const path = store.pathOf(key);
    const bytes = randomBytes(10 * MB);
    let writing = true;
    let sawPartial = false;
    let sawWhole = false;
    const poller = (async () => {
      while (writing) {
        const size = await stat(path).then(
          (s) => s.size,
          () => null,
        );
        if (size !== null && size !== bytes.length) sawPartial = true;
        if (size === bytes.length) sawWhole = true;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await store.put(key, bytes, 'application/pdf');
    writing = false;
    await poller;
    expect(sawPartial).toBe(false);
    expect(sawWhole || (await stat(path)).size === bytes.length).toBe(true);
  });

  it('a put that fails leaves no temp file and no final file', async () => {
    const organization = randomUUID();
    const attachment = randomUUID();
    // `<org>/<attachment>` is a directory holding a variant, so a file cannot be renamed onto it.
    await store.put(`${organization}/${attachment}/original`, Buffer.from('x'), 'text/plain');
    await expect(store.put(`${organization}/${attachment}`, Buffer.from('y'), 'text/plain')).rejects.toThrow();
    expect(await readdir(join(root, organization))).toEqual([attachment]);
    expect(await readdir(join(root, organization, attachment))).toEqual(['original']);
  });

  it('removes an attachment directory (and an organization directory) once its last variant is deleted', async () => {
    const organization = randomUUID();
    const [a, b] = [randomUUID(), randomUUID()];
    const keys = [`${organization}/${a}/original`, `${organization}/${a}/thumb-320`, `${organization}/${b}/original`];
    await Promise.all(keys.map((key) => store.put(key, Buffer.from(key), 'text/plain')));
    await store.delete([keys[0]!]);
    expect((await readdir(join(root, organization))).sort()).toEqual([a, b].sort());
    await store.delete([keys[1]!]);
    expect(await readdir(join(root, organization))).toEqual([b]);
    await store.delete([keys[2]!]);
    await expect(stat(join(root, organization))).rejects.toMatchObject({ code: 'ENOENT' });
    // The root stays.
    expect((await stat(root)).isDirectory()).toBe(true);
  });

  it('get opens the file it sizes: only a missing file is null, other errors throw', async () => {
    const organization = randomUUID();
    const attachment = randomUUID();
    await store.put(`${organization}/${attachment}/original`, Buffer.from('x'), 'text/plain');
    // A directory under a key is not "missing".
    await expect(store.get(`${organization}/${attachment}`)).rejects.toThrow();
  });

  it('check fails when the root cannot be made', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const broken = new FsBlobStore(join(file, 'files'));
    await expect(broken.check()).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});

describe('s3 driver', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startS3Server();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('keeps two prefixes on one bucket apart', async () => {
    const a = new S3BlobStore({ ...s3.config, prefix: 'deployment-a/' });
    const b = new S3BlobStore({ ...s3.config, prefix: 'deployment-b/' });
    try {
      const key = newKey();
      await a.put(key, Buffer.from('from a'), 'text/plain');
      expect(await b.get(key)).toBeNull();
      await b.put(key, Buffer.from('from b'), 'text/plain');
      expect((await read(a, key))?.bytes.toString()).toBe('from a');
      expect((await read(b, key))?.bytes.toString()).toBe('from b');
      await b.delete([key]);
      expect(await b.get(key)).toBeNull();
      expect((await read(a, key))?.bytes.toString()).toBe('from a');
      // The prefix is part of the object key in the bucket.
      const plain = new S3BlobStore(s3.config);
      try {
        expect((await read(plain, `deployment-a/${key}`))?.bytes.toString()).toBe('from a');
      } finally {
        await plain.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('deletes in batches of at most 1,000 keys', async () => {
    const store = new S3BlobStore(s3.config);
    try {
      const stored = Array.from({ length: 5 }, () => newKey());
      await Promise.all(stored.map((key) => store.put(key, Buffer.from(key), 'text/plain')));
      const missing = Array.from({ length: 1_200 }, () => newKey());
      const before = s3.requests.length;
      await store.delete([...missing.slice(0, 600), ...stored, ...missing.slice(600)]);
      const deletes = s3.requests.slice(before).filter((r) => r.method === 'POST' && /[?&]delete/.test(r.url));
      expect(deletes.length).toBe(2);
      expect(await Promise.all(stored.map((key) => store.get(key)))).toEqual(stored.map(() => null));
    } finally {
      await store.close();
    }
  });

  it('check fails for a bucket that does not exist', async () => {
    const store = new S3BlobStore({ ...s3.config, bucket: 'no-such-bucket' });
    try {
      await expect(store.check()).rejects.toThrow();
      // A missing bucket is a misconfiguration, not a missing object.
      await expect(store.get(newKey())).rejects.toThrow();
    } finally {
      await store.close();
    }
  });

  it('check fails, quickly, once the server is gone', async () => {
    const server = await startS3Server();
    const store = new S3BlobStore(server.config, { checkTimeoutMs: 3_000 });
    try {
      await store.check();
      await server.stop();
      const started = Date.now();
      await expect(store.check()).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  /** A server that accepts connections and then does what `answer` says (or nothing). */
  async function rogueServer(answer?: (socket: Socket) => void) {
    const sockets = new Set<Socket>();
    const server = createNetServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      answer?.(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      async close() {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  it('check is bounded when the server accepts connections but never answers', async () => {
    const silent = await rogueServer();
    const store = new S3BlobStore({ ...s3.config, endpoint: silent.endpoint }, { checkTimeoutMs: 500 });
    try {
      const started = Date.now();
      await expect(store.check()).rejects.toThrow(/did not answer within 500 ms/);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await store.close();
      await silent.close();
    }
  });

  it('a put to a server that never answers fails after its request timeout and retries, not never', async () => {
    const silent = await rogueServer();
    const store = new S3BlobStore({ ...s3.config, endpoint: silent.endpoint }, { requestTimeoutMs: 300, maxAttempts: 2 });
    try {
      const started = Date.now();
      await expect(store.put(newKey(), randomBytes(1000), 'application/pdf')).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await store.close();
      await silent.close();
    }
  });

  it('a download that stalls midway errors after the socket timeout instead of hanging', async () => {
    // Headers and 10 of the 100 bytes promised, then silence.
    const stalling = await rogueServer((socket) =>
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: 100\r\n\r\n0123456789')),
    );
    const store = new S3BlobStore({ ...s3.config, endpoint: stalling.endpoint }, { socketTimeoutMs: 300, maxAttempts: 1 });
    try {
      const got = await store.get(newKey());
      expect(got?.size).toBe(100);
      const started = Date.now();
      await expect(buffer(got!.body)).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await store.close();
      await stalling.close();
    }
  });
});
