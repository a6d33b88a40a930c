import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { StorageConfig } from '../../config.ts';
import type { BlobStore } from './storage.ts';

export type S3StorageConfig = Extract<StorageConfig, { driver: 's3' }>;

/** S3 deletes at most this many keys per DeleteObjects request. */
const DELETE_BATCH = 1000;

/**
 * Network bounds of every request (the SDK's Node request handler, @smithy/node-http-handler):
 * - `connectionTimeout` 5 s: a TCP/TLS connect that has not completed fails
 *   (and is retried), so an unreachable endpoint fails fast instead of hanging;
 * - `requestTimeout` 60 s with `throwOnRequestTimeout`: from sending the request
 *   (a 10 MB PutObject body included) to the response's headers. Without
 *   `throwOnRequestTimeout` the SDK only logs a warning and keeps waiting;
 * - `socketTimeout` 30 s: a socket idle that long fails the request, also while
 *   a GetObject body streams after the headers (a stalled download errors
 *   instead of hanging; a slow but moving one is fine);
 * - `maxAttempts` 3: the SDK's standard retry mode (exponential backoff with
 *   jitter, retry quota) retries throttling, 5xx, timeouts and network errors twice more.
 * One call's worst case is therefore about 3 × 60 s plus backoff. `check()`
 * (readiness) has its own bound, `checkTimeoutMs`, over all its attempts.
 */
export const S3_TIMEOUTS = {
  connectionTimeoutMs: 5_000,
  requestTimeoutMs: 60_000,
  socketTimeoutMs: 30_000,
  maxAttempts: 3,
  checkTimeoutMs: 5_000,
};
/** Sockets kept per host: the upload path sends at most a few objects per request. */
const MAX_SOCKETS = 50;

/**
 * Attachment bytes in an S3 bucket (FILE_STORAGE=s3): AWS itself, or any
 * S3-compatible server (MinIO, Ceph, R2, …) with S3_ENDPOINT and usually
 * S3_FORCE_PATH_STYLE=true. Every object key is `<S3_PREFIX><key>`, so several
 * deployments can share one bucket. A PutObject is atomic on S3: readers see
 * the old object, or the whole new one.
 */
export class S3BlobStore implements BlobStore {
  readonly driver = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly checkTimeoutMs: number;

  /** `timeouts`: S3_TIMEOUTS unless given (tests shorten them). */
  constructor(config: S3StorageConfig, timeouts: Partial<typeof S3_TIMEOUTS> = {}) {
    const bounds = { ...S3_TIMEOUTS, ...timeouts };
    this.bucket = config.bucket;
    this.prefix = config.prefix;
    this.checkTimeoutMs = bounds.checkTimeoutMs;
    const clientConfig: S3ClientConfig = {
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      maxAttempts: bounds.maxAttempts,
      requestHandler: {
        connectionTimeout: bounds.connectionTimeoutMs,
        requestTimeout: bounds.requestTimeoutMs,
        throwOnRequestTimeout: true,
        socketTimeout: bounds.socketTimeoutMs,
        httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
        httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      },
    };
    if (config.endpoint) {
      clientConfig.endpoint = config.endpoint;
      // S3-compatible servers often reject the flexible checksums (x-amz-checksum-*
      // headers, aws-chunked bodies) that SDK v3 adds by default since 2025:
      // send and verify them only where the API requires them. AWS keeps the defaults.
      clientConfig.requestChecksumCalculation = 'WHEN_REQUIRED';
      clientConfig.responseChecksumValidation = 'WHEN_REQUIRED';
    }
    // Both keys given: use them. Otherwise the SDK's default chain (environment,
    // shared profile, web identity, container or instance role).
    if (config.accessKeyId && config.secretAccessKey) {
      clientConfig.credentials = { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey };
    }
    this.client = new S3Client(clientConfig);
  }

  private objectKey(key: string): string {
    if (typeof key !== 'string' || key.length === 0) throw new Error('Invalid storage key');
    return this.prefix + key;
  }

  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: body,
        ContentType: contentType,
        ContentLength: body.length,
      }),
    );
  }

  async putFile(key: string, path: string, contentType: string): Promise<void> {
    const { size } = await stat(path);
    // A stream of known length goes up in one PutObject (files up to 5 GB), never whole in memory.
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: createReadStream(path),
        ContentType: contentType,
        ContentLength: size,
      }),
    );
  }

  async get(key: string): Promise<{ body: Readable; size: number } | null> {
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      if (!result.Body) throw new Error(`S3 GetObject returned no body for ${key}`);
      // In Node the SDK's body is the HTTP response (an IncomingMessage): a Readable.
      return { body: result.Body as Readable, size: result.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const unique = [...new Set(keys)].map((key) => this.objectKey(key));
    for (let start = 0; start < unique.length; start += DELETE_BATCH) {
      const batch = unique.slice(start, start + DELETE_BATCH);
      // Quiet: the answer lists only the failures. Missing keys are not failures on S3.
      const result = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const failed = (result.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new Error(
          `S3 DeleteObjects failed for ${failed.length} key(s), e.g. ${first.Key}: ${first.Code} ${first.Message ?? ''}`.trim(),
        );
      }
    }
  }

  /** The bucket exists and these credentials may reach it; fails within `checkTimeoutMs` (5 s). */
  async check(): Promise<void> {
    const abortSignal = AbortSignal.timeout(this.checkTimeoutMs);
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal });
    } catch (error) {
      if (abortSignal.aborted) throw new Error(`S3 bucket ${this.bucket} did not answer within ${this.checkTimeoutMs} ms`);
      throw error;
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** The object is missing (a missing bucket is a misconfiguration and stays an error). */
function isNotFound(error: unknown): boolean {
  if (error instanceof NoSuchKey) return true;
  if (!(error instanceof S3ServiceException) || error.name === 'NoSuchBucket') return false;
  return error.name === 'NoSuchKey' || error.$metadata?.httpStatusCode === 404;
}
