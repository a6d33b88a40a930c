import type { Readable } from 'node:stream';

/**
 * Where attachment bytes live. Keys are made by the attachment service from
 * ids alone (`<organizationId>/<attachmentId>/<variant>`), never from user
 * input; a driver may still refuse a key that could leave its root.
 */
export interface BlobStore {
  readonly driver: 'fs' | 's3';
  /** Stores `body` under `key`, replacing nothing half-written: readers see all of it or none. */
  put(key: string, body: Buffer, contentType: string): Promise<void>;
  /**
   * Stores the file at `path` (a local temp file) under `key` the same way, reading it as a
   * stream: large files (exports) never sit in memory whole.
   */
  putFile(key: string, path: string, contentType: string): Promise<void>;
  /** The stored bytes as a stream, or null when nothing is stored under `key`. */
  get(key: string): Promise<{ body: Readable; size: number } | null>;
  /** Deletes the keys; keys that hold nothing are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Whether the store answers (readiness). */
  check(): Promise<void>;
  close(): Promise<void>;
}
