import { PothosValidationError } from '@pothos/core';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { createGraphQLError, useErrorHandler, type Plugin, type YogaLogger } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Context } from '../schema/context.ts';
import { DomainError, ServiceUnavailableError, type Service } from '../services/errors.ts';

// Errors the handler below logged, with the id of the request they broke.
const requestIds = new WeakMap<object, string>();
// Every error logged once already (Yoga reports the ones masking replaced again).
const logged = new WeakSet<object>();

// Prisma: can't reach the server, timed out reaching it, server closed the
// connection, no connection from the pool in time.
const PRISMA_OUTAGE_CODES = new Set(['P1001', 'P1002', 'P1017', 'P2024']);
// @prisma/adapter-pg's names for node-postgres' connection failures.
const ADAPTER_OUTAGE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
// PostgreSQL: shutting down, starting up or in recovery, too many connections.
const POSTGRES_OUTAGE_CODES = new Set(['57P01', '57P02', '57P03', '53300']);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);
// node-postgres' messages for a connection lost or never made.
const PG_CONNECTION_MESSAGE = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

/**
 * Which service an error says is out of reach, or null. Follows the causes
 * Prisma and its adapter wrap around the driver's error.
 */
export function outageOf(error: unknown, depth = 0): Service | null {
  if (typeof error !== 'object' || error === null || depth > 4) return null;
  if (error instanceof ServiceUnavailableError) return error.service;
  const { name, code, message, severity, meta, cause, kind, originalError } = error as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    severity?: unknown;
    meta?: { driverAdapterError?: { cause?: { kind?: unknown } } };
    cause?: unknown;
    kind?: unknown;
    originalError?: unknown;
  };
  if (name === 'PrismaClientInitializationError') return 'database';
  if (name === 'PrismaClientKnownRequestError' && PRISMA_OUTAGE_CODES.has(code as string)) return 'database';
  if (ADAPTER_OUTAGE_KINDS.has(meta?.driverAdapterError?.cause?.kind as string) || ADAPTER_OUTAGE_KINDS.has(kind as string))
    return 'database';
  // ioredis, when a command cannot be sent or its connection closed under it.
  if (name === 'MaxRetriesPerRequestError' || message === 'Connection is closed.') return 'redis';
  if (typeof code === 'string') {
    if (SOCKET_CODES.has(code)) return 'database';
    // A SQLSTATE from PostgreSQL itself: class 08 is "connection exception".
    if (typeof severity === 'string' && (code.startsWith('08') || POSTGRES_OUTAGE_CODES.has(code))) return 'database';
  }
  if (typeof message === 'string' && PG_CONNECTION_MESSAGE.test(message)) return 'database';
  return outageOf(cause, depth + 1) ?? outageOf(originalError, depth + 1);
}

const SERVICE_NAMES: Record<Service, string> = { database: 'The database is', redis: 'Redis is', storage: 'File storage is' };
const unavailableMessage = (service: Service) => `${SERVICE_NAMES[service]} unavailable; retry shortly`;

function unavailable(service: Service, error?: GraphQLError): GraphQLError {
  return createGraphQLError(unavailableMessage(service), {
    nodes: error?.nodes,
    path: error?.path,
    extensions: { code: 'SERVICE_UNAVAILABLE', service },
  });
}

function expected(error: unknown): GraphQLError['extensions'] | null {
  if (error instanceof DomainError) {
    const coded = { code: error.code, ...error.details };
    // Yoga answers a request whose error asks for it with this status and
    // headers, and leaves `http` out of the body (graphql-ws.ts drops it too).
    if (error.code === 'RATE_LIMITED' && typeof error.details.retryAfterMs === 'number') {
      return { ...coded, http: { status: 429, headers: { 'Retry-After': String(Math.ceil(error.details.retryAfterMs / 1000)) } } };
    }
    return coded;
  }
  // Pothos raises these for malformed global IDs, cursors and page arguments
  // (they extend GraphQLError, so this must come before the GraphQLError case).
  if (error instanceof PothosValidationError) return { code: 'BAD_USER_INPUT' };
  return null;
}

/** A DomainError raised outside execution (a plugin's or the socket's refusal), coded as maskError codes it. */
export function domainGraphQLError(error: DomainError): GraphQLError {
  return createGraphQLError(error.message, { extensions: expected(error) ?? {} });
}

/**
 * The one place domain errors become GraphQL errors (DESIGN §2): a DomainError
 * keeps its message and `extensions.code`; anything unexpected is replaced by a
 * generic message carrying the request id that the log line names too.
 */
export function maskError(error: unknown, message: string): Error {
  if (!(error instanceof GraphQLError)) {
    // Thrown before execution, e.g. by the context's token check.
    const service = outageOf(error);
    return service ? unavailable(service) : createGraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  }
  const original = error.originalError;
  if (!original) {
    // Parse, validation and query-limit errors are client-safe; Yoga codes the
    // graphql-js ones, the limit plugins leave theirs uncoded.
    const code = error.extensions.code;
    // A multipart body refused while parsing: over a form-data limit, or malformed.
    if (code === 'REQUEST_ENTITY_TOO_LARGE' || code === 'BAD_REQUEST') {
      return createGraphQLError(multipartMessage(error.message), {
        extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
      });
    }
    if (code) return error;
    // useCSRFPrevention's refusal (HTTP 403), said the way a client can act on.
    if (error.message === 'Required CSRF header(s) not present') {
      return createGraphQLError(
        'This request needs the header "x-graphql-yoga-csrf" (any value): multipart and GET requests without it could be forged by another site',
        { extensions: { ...error.extensions, code: 'FORBIDDEN' } },
      );
    }
    return createGraphQLError(error.message, {
      nodes: error.nodes,
      path: error.path,
      extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
    });
  }
  const service = outageOf(original);
  if (service) return unavailable(service, error);
  const extensions = expected(original);
  if (extensions) {
    // The same error object, coded: Yoga logs every error that masking
    // replaces as a server error, and these are the client's.
    Object.assign(error.extensions, extensions);
    return error;
  }
  // graphql-js wraps a scalar's rejection of a variable (EmailAddress,
  // DateTime); the outer message names the variable.
  if (original instanceof GraphQLError) {
    return createGraphQLError(error.message, {
      nodes: error.nodes,
      path: error.path,
      extensions: { code: 'BAD_USER_INPUT', ...original.extensions, ...error.extensions },
    });
  }
  const requestId = requestIds.get(original);
  return createGraphQLError('Unexpected error', {
    nodes: error.nodes,
    path: error.path,
    extensions: { code: 'INTERNAL_SERVER_ERROR', ...(requestId ? { requestId } : {}) },
  });
}

/** busboy's limit messages, with the setting that changes each limit named. */
function multipartMessage(message: string): string {
  const settings: [RegExp, string][] = [
    [/File size limit exceeded: (\d+)/, 'The file is too large: at most $1 bytes (UPLOAD_MAX_FILE_BYTES)'],
    [/Files limit exceeded: (\d+)/, 'Too many files in one request: at most $1 (UPLOAD_MAX_FILES)'],
    [/Field value size exceeded: (\d+)/, 'A form field is too large: at most $1 bytes (UPLOAD_MAX_FIELD_BYTES)'],
  ];
  for (const [pattern, replacement] of settings) {
    const match = pattern.exec(message);
    if (match) return match[0].replace(pattern, replacement);
  }
  return message;
}

/** How often an outage is logged at warn per service; the others of the spell go to debug. */
const OUTAGE_LOG_INTERVAL_MS = 5000;

/**
 * Logs one error once: an outage at warn (at most every few seconds per
 * service, without a stack: the cause is outside this process), a client's
 * mistake at debug, anything else at error under the request id that its
 * masked form then carries.
 */
function logError(log: Logger, error: unknown, requestId: string | undefined): void {
  const original = (error instanceof GraphQLError ? error.originalError : null) ?? error;
  if (typeof original !== 'object' || original === null) {
    log.error({ err: original, requestId }, 'unexpected error');
    return;
  }
  if (logged.has(original)) return;
  logged.add(original);
  const path = error instanceof GraphQLError ? error.path : undefined;
  const service = outageOf(original);
  if (service) {
    const now = Date.now();
    const spell = outages.get(log) ?? new Map<Service, { at: number; since: number }>();
    outages.set(log, spell);
    const last = spell.get(service);
    const reason = (original as { message?: string }).message;
    if (last && now - last.at < OUTAGE_LOG_INTERVAL_MS) {
      last.since++;
      log.debug({ service, reason, requestId }, `${service} unavailable`);
      return;
    }
    spell.set(service, { at: now, since: 0 });
    log.warn({ service, reason, requestId, alsoFailedSinceLastLog: last?.since ?? 0 }, `${service} unavailable; clients are told to retry`);
    return;
  }
  const client = expected(original);
  if (client || original instanceof GraphQLError) {
    const code = client?.code ?? (original as GraphQLError).extensions?.code ?? 'BAD_USER_INPUT';
    log.debug({ code, reason: (original as Error).message, requestId, path }, 'client error');
    return;
  }
  if (requestId) requestIds.set(original, requestId);
  log.error({ err: original, requestId, path }, 'unexpected error');
}

/** Per logger, when each service's outage was last logged at warn (and how many failures since). */
const outages = new WeakMap<Logger, Map<Service, { at: number; since: number }>>();

/**
 * Logs every error of a request once, at the level it deserves (see
 * logError), before masking; unexpected ones under the request id their
 * masked form carries.
 */
function useUnexpectedErrorLog(log: Logger): Plugin<Context> {
  return useErrorHandler<Context>(({ errors, context, phase }) => {
    // Envelop hands a context-building failure over rewrapped as a new Error
    // (its class lost); Yoga reports the original to yogaLogger below.
    if (phase === 'context') return;
    // In the execution phase envelop hands over the execution args, whose
    // contextValue is our Context; elsewhere it is the context itself.
    const ctx = context as { contextValue?: Partial<Context> } & Partial<Context>;
    const requestId = ctx.contextValue?.requestId ?? ctx.requestId ?? 'unknown';
    for (const error of errors) logError(log, error, requestId);
  }) as Plugin<Context>;
}

/**
 * The logger Yoga is given. Yoga logs at error every error that masking
 * replaced, with its stack: client mistakes whose message only gained a code
 * (query limits, variables a scalar refused), outages, and unexpected errors
 * the plugin above has logged already. Those go through logError instead, so
 * each error is logged once at its own level.
 */
function yogaLogger(log: Logger): YogaLogger {
  const pass =
    (level: 'debug' | 'info' | 'warn') =>
    (...args: unknown[]) => {
      if (!log.isLevelEnabled(level)) return;
      const [first, ...rest] = args;
      if (typeof first === 'string') log[level](rest.length ? { details: rest } : {}, first);
      else log[level]({ details: args }, 'graphql-yoga');
    };
  return {
    debug: pass('debug'),
    info: pass('info'),
    warn: pass('warn'),
    error: (...args: unknown[]) => {
      const [first] = args;
      if (typeof first === 'object' && first !== null) logError(log, first, undefined);
      else log.error({ details: args }, 'graphql-yoga error');
    },
  };
}

/**
 * What to tell a client whose socket `error` kept from being admitted, when
 * it is an outage (logged like every other: at warn, a few seconds apart);
 * null for anything else.
 */
export function outageReason(error: unknown, log: Logger): string | null {
  const service = outageOf(error);
  if (!service) return null;
  logError(log, error, undefined);
  return unavailableMessage(service);
}

/** Masks an error as Yoga would for a client (the app's maskError, counted when metrics are on). */
export type MaskError = (error: unknown, message: string) => Error;

/**
 * How errors reach clients, made once per app, so every path masks and logs
 * with the same function: `maskError` is the one Yoga is given, and the
 * transport uses it for what does not pass through Yoga's pipeline (live
 * events written straight to a socket; an operation whose context could not
 * be built), after logging each error once as the plugin does for the rest.
 */
export interface ErrorMasking {
  /** Yoga's `maskedErrors.maskError`. */
  readonly maskError: MaskError;
  /** Yoga's `logging`. */
  readonly logger: YogaLogger;
  /** Logs every error of a request once, before Yoga masks it. */
  readonly plugin: Plugin<Context>;
  /** A result Yoga never sees, logged and masked as Yoga treats the others. */
  result(result: ExecutionResult, requestId: string): ExecutionResult;
  /**
   * An error that ends an operation before Yoga runs it (a socket's context
   * failed to build: the token's user could not be loaded): the client gets
   * SERVICE_UNAVAILABLE for an outage and a masked INTERNAL_SERVER_ERROR
   * otherwise, never graphql-ws' 4500 close.
   */
  operationError(error: unknown, requestId: string): GraphQLError;
}

/** `count` wraps maskError to count what it hands out (metrics). */
export function createErrorMasking(log: Logger, count?: (mask: MaskError) => MaskError): ErrorMasking {
  const mask: MaskError = count ? count(maskError) : maskError;
  return {
    maskError: mask,
    logger: yogaLogger(log),
    plugin: useUnexpectedErrorLog(log),
    result(result, requestId) {
      if (!result.errors?.length) return result;
      for (const error of result.errors) logError(log, error, requestId);
      return { ...result, errors: result.errors.map((error) => mask(error, 'Unexpected error.') as GraphQLError) };
    },
    operationError(error, requestId) {
      logError(log, error, requestId);
      return mask(error, 'Unexpected error.') as GraphQLError;
    },
  };
}
