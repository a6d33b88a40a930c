import { PothosValidationError } from '@pothos/core';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { createGraphQLError, useErrorHandler, type Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Context } from './context.ts';
import { DomainError } from './services/errors.ts';

// Errors the handler below logged, with the id of the request they broke.
const requestIds = new WeakMap<object, string>();

function expected(error: unknown): GraphQLError['extensions'] | null {
  if (error instanceof DomainError) return { code: error.code, ...error.details };
  // Pothos raises these for malformed global IDs, cursors and page arguments
  // (they extend GraphQLError, so this must come before the GraphQLError case).
  if (error instanceof PothosValidationError) return { code: 'BAD_USER_INPUT' };
  return null;
}

/**
 * The one place domain errors become GraphQL errors (DESIGN §2): a DomainError
 * keeps its message and `extensions.code`; anything unexpected is replaced by a
 * generic message carrying the request id that the log line names too.
 */
export function maskError(error: unknown, message: string): Error {
  if (!(error instanceof GraphQLError)) return createGraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  const original = error.originalError;
  if (!original) {
    // Parse, validation and query-limit errors are client-safe; Yoga codes the
    // graphql-js ones, the limit plugins leave theirs uncoded.
    if (error.extensions.code) return error;
    return createGraphQLError(error.message, { nodes: error.nodes, path: error.path, extensions: { ...error.extensions, code: 'BAD_USER_INPUT' } });
  }
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

/** Logs the unexpected ones among `errors` under the request id, which their masked form then carries. */
function logUnexpected(log: Logger, errors: readonly unknown[], requestId: string): void {
  for (const error of errors) {
    const original = error instanceof GraphQLError ? error.originalError : error;
    if (!original || expected(original) || original instanceof GraphQLError) continue;
    requestIds.set(original, requestId);
    log.error({ err: original, requestId, path: error instanceof GraphQLError ? error.path : undefined }, 'unexpected error');
  }
}

/** Logs unexpected resolver errors with the request id before they are masked. */
export function useUnexpectedErrorLog(log: Logger): Plugin<Context> {
  return useErrorHandler<Context>(({ errors, context }) => {
    // In the execution phase envelop hands over the execution args, whose
    // contextValue is our Context; elsewhere it is the context itself.
    const ctx = context as { contextValue?: Partial<Context> } & Partial<Context>;
    logUnexpected(log, errors, ctx.contextValue?.requestId ?? ctx.requestId ?? 'unknown');
  }) as Plugin<Context>;
}

/**
 * Logs and masks a result that does not pass through Yoga's pipeline (live
 * events written straight to a socket), exactly as Yoga treats the others.
 */
export function maskResult(result: ExecutionResult, log: Logger, requestId: string): ExecutionResult {
  if (!result.errors?.length) return result;
  logUnexpected(log, result.errors, requestId);
  return { ...result, errors: result.errors.map((error) => maskError(error, 'Unexpected error.') as GraphQLError) };
}
