import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StorageConfig } from '../../src/config.ts';

/** The part of s3rver 3.7 (which ships no types) that the tests use. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string; configs: (string | Buffer)[] }[];
  vhostBuckets?: boolean;
  allowMismatchedSignatures?: boolean;
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  /** FILE_STORAGE=s3 settings for this server (path-style, s3rver's dummy credentials). */
  config: Extract<StorageConfig, { driver: 's3' }>;
  /** Method and URL of every request the server received, in order (for tests that count round trips). */
  requests: { method: string; url: string }[];
  /** Closes the server (dropping open connections) and deletes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * An S3-compatible server of our own (s3rver, objects on disk in a fresh temp
 * directory) on a spare loopback port, with one bucket. Nothing leaves the machine.
 *
 * s3rver 3.7 speaks enough of S3 for the drivers (PutObject, GetObject,
 * DeleteObjects, HeadBucket) and checks SigV4 signatures against the
 * credentials S3RVER/S3RVER. The S3 driver turns the SDK's flexible checksums
 * off for custom endpoints (`requestChecksumCalculation: 'WHEN_REQUIRED'`),
 * which s3rver needs: it does not decode aws-chunked bodies.
 */
export async function startS3Server(bucket = 'parley-test'): Promise<LocalS3> {
  const directory = await mkdtemp(join(tmpdir(), 'parley-s3-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
    vhostBuckets: false,
  });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  const endpoint = `http://127.0.0.1:${address.port}`;
  const requests: { method: string; url: string }[] = [];
  server.httpServer?.on('request', (req: { method?: string; url?: string }) =>
    requests.push({ method: req.method ?? '', url: req.url ?? '' }),
  );
  let stopped = false;
  return {
    endpoint,
    bucket,
    requests,
    config: {
      driver: 's3',
      bucket,
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      prefix: '',
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // Keep-alive sockets of clients would hold close() open: drop them.
      const closed = server.close();
      server.httpServer?.closeAllConnections();
      await closed;
      await rm(directory, { recursive: true, force: true });
    },
  };
}
