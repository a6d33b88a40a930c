import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobStore } from './storage.ts';

/** One key segment: letters, digits, `_` and `-` only (so never `.`, `..` or empty). */
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Suffix of in-progress writes; a key segment cannot contain `.`, so no key ever names a temp file. */
const TEMP_SUFFIX = '.tmp';

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/**
 * Attachment bytes as files under one root directory (FILE_STORAGE=fs).
 *
 * A key `<org>/<attachment>/<variant>` is the file `<root>/<org>/<attachment>/<variant>`.
 * Keys come from ids alone, but the store still refuses any key that is not
 * `/`-separated `[A-Za-z0-9_-]` segments and checks that the resolved path
 * stays under the root. A put writes a temp file next to the final one,
 * fsyncs it and renames it into place, so a reader sees the whole file or none.
 */
export class FsBlobStore implements BlobStore {
  readonly driver = 'fs' as const;
  readonly root: string;
  private ready: Promise<void> | null = null;

  constructor(dir: string) {
    this.root = resolve(dir);
  }

  /** The root, created (0700) on first use. */
  private ensureRoot(): Promise<void> {
    this.ready ??= mkdir(this.root, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (error: unknown) => {
        this.ready = null;
        throw error;
      },
    );
    return this.ready;
  }

  /** The file of `key`, or an error for a key that is not ours to write. */
  pathOf(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > 512) throw new Error('Invalid storage key');
    const segments = key.split('/');
    if (!segments.every((segment) => SEGMENT.test(segment))) throw new Error(`Invalid storage key: ${JSON.stringify(key)}`);
    const path = resolve(this.root, ...segments);
    const rel = relative(this.root, path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`Storage key leaves the root: ${JSON.stringify(key)}`);
    return path;
  }

  put(key: string, body: Buffer, _contentType: string): Promise<void> {
    return this.write(key, (handle) => handle.writeFile(body));
  }

  putFile(key: string, source: string, _contentType: string): Promise<void> {
    return this.write(key, async (handle) => {
      // writeFile on a handle writes all of the chunk from the current position on.
      for await (const chunk of createReadStream(source)) await handle.writeFile(chunk as Buffer);
    });
  }

  private async write(key: string, fill: (handle: FileHandle) => Promise<void>): Promise<void> {
    const path = this.pathOf(key);
    await this.ensureRoot();
    const temp = `${path}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
    let created: string[];
    try {
      const fresh = await openFresh(temp);
      created = fresh.created;
      try {
        await fill(fresh.handle);
        await fresh.handle.sync();
      } finally {
        await fresh.handle.close();
      }
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    // The rename (and any directory made for it) is durable once the entries
    // naming them are: fsync the file's directory, and the parent of each
    // directory this put created (the organization's, the root).
    await Promise.all([...new Set([dirname(path), ...created.map((dir) => dirname(dir))])].map(syncDirectory));
  }

  async get(key: string): Promise<{ body: Readable; size: number } | null> {
    const path = this.pathOf(key);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null;
      throw error;
    }
    // Size and stream from the same open file, so a concurrent replace cannot
    // pair the old size with the new bytes.
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new Error(`Storage key is not a file: ${JSON.stringify(key)}`);
      const { size } = info;
      return { body: createReadStream('', { fd: handle, autoClose: true }), size };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const paths = keys.map((key) => this.pathOf(key));
    const directories = new Set<string>();
    await Promise.all(
      paths.map(async (path) => {
        await rm(path, { force: true });
        directories.add(dirname(path));
      }),
    );
    // Remove per-attachment directories (and then organization directories)
    // left empty, never the root. ENOTEMPTY: another variant or a put in
    // progress still lives there; ENOENT: someone else removed it first.
    for (const directory of directories) {
      let current = directory;
      while (current !== this.root && current.startsWith(this.root + sep)) {
        try {
          await rmdir(current);
        } catch (error) {
          const code = errorCode(error);
          if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') break;
          throw error;
        }
        current = dirname(current);
      }
    }
  }

  /** The root exists and a file can be written into it (and removed again). */
  async check(): Promise<void> {
    await this.ensureRoot();
    const probe = join(this.root, `.check-${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    const handle = await open(probe, 'wx', 0o600);
    try {
      await handle.writeFile('ok');
    } finally {
      await handle.close();
      await unlink(probe).catch(() => {});
    }
  }

  async close(): Promise<void> {}
}

/**
 * Creates `temp` ('wx': a new file of our own, never one already there) with
 * its directory, and says which directories it made. A delete of the same
 * attachment may remove the directory between the mkdir and the open: then
 * make it again.
 */
async function openFresh(temp: string): Promise<{ handle: FileHandle; created: string[] }> {
  const directory = dirname(temp);
  const created: string[] = [];
  for (let attempt = 1; ; attempt++) {
    // The first directory made, if any; the ones below it up to `directory` are new too.
    const first = await mkdir(directory, { recursive: true, mode: 0o700 });
    if (first)
      for (let dir = directory; ; dir = dirname(dir)) {
        created.push(dir);
        if (dir === first || dir === dirname(dir)) break;
      }
    try {
      return { handle: await open(temp, 'wx', 0o600), created };
    } catch (error) {
      if (errorCode(error) !== 'ENOENT' || attempt >= 3) throw error;
    }
  }
}

/** Best effort: some filesystems (some network ones) refuse to open or fsync a directory; the file itself is synced. */
async function syncDirectory(directory: string): Promise<void> {
  let handle;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch {
    // Not supported here.
  } finally {
    await handle?.close();
  }
}
