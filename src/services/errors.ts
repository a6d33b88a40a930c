/** Codes clients may branch on; they appear as `extensions.code`. */
export type ErrorCode = 'UNAUTHENTICATED' | 'FORBIDDEN' | 'NOT_FOUND' | 'BAD_USER_INPUT' | 'CONFLICT' | 'RATE_LIMITED' | 'RESYNC_REQUIRED';

/**
 * An expected failure raised by a service. Services throw these instead of
 * GraphQL errors; `src/errors.ts` turns them into `extensions.code` once.
 */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra machine-readable detail, e.g. `{ field: 'body' }`. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** A dependency Parley cannot serve without. */
export type Service = 'database' | 'redis' | 'storage';

/**
 * Thrown where Parley gives up waiting for a service; `src/errors.ts` tells
 * the client SERVICE_UNAVAILABLE, to retry.
 */
export class ServiceUnavailableError extends Error {
  constructor(
    readonly service: Service,
    message: string,
  ) {
    super(message);
    this.name = 'ServiceUnavailableError';
  }
}

export const notFound = (what: string) => new DomainError('NOT_FOUND', `${what} not found`);
export const forbidden = (message: string) => new DomainError('FORBIDDEN', message);
export const badInput = (field: string, message: string) => new DomainError('BAD_USER_INPUT', message, { field });
export const conflict = (message: string, details?: Record<string, unknown>) => new DomainError('CONFLICT', message, details);
