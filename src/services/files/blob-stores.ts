import type { StorageConfig } from '../../config.ts';
import { FsBlobStore } from './fs-store.ts';
import { S3BlobStore } from './s3-store.ts';
import type { BlobStore } from './storage.ts';

/**
 * The attachment store chosen by configuration (FILE_STORAGE): files under
 * FILE_STORAGE_DIR (default `<data dir>/files`), or an S3 bucket. Nothing is
 * contacted here: the fs root is created on first use and the S3 client
 * connects on its first request; `check()` is the readiness probe.
 */
export function createBlobStore(config: StorageConfig): BlobStore {
  switch (config.driver) {
    case 'fs':
      return new FsBlobStore(config.dir);
    case 's3':
      return new S3BlobStore(config);
  }
}
