import { getOperationAST, Kind, type DocumentNode, type FragmentDefinitionNode, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../schema/context.ts';
import { DomainError } from '../services/errors.ts';
import { domainGraphQLError } from './errors.ts';
import { WRITE_LIMIT_OF, type WriteLimit } from '../services/rate-limits.ts';

/**
 * Per-user write limits, checked once per operation before anything runs: a
 * mutation whose root fields would take a bucket over its limit is refused
 * whole (RATE_LIMITED, HTTP 429 with Retry-After), so no half of it is done.
 * Over HTTP and graphql-ws alike, as both execute through Yoga's envelop.
 */
export function useWriteLimits(): Plugin<Context> {
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== 'mutation') return;
      const counts = writesOf(args.document, operation.selectionSet);
      if (counts.size === 0) return;
      const ctx = args.contextValue as Context;
      try {
        await ctx.services.rateLimits.write(ctx, counts);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        setResultAndStopExecution({ errors: [domainGraphQLError(error)] });
      }
    },
  };
}

/** How many root fields of each bucket a mutation has, through fragments; each alias counts. */
export function writesOf(document: DocumentNode, root: SelectionSetNode): Map<WriteLimit, number> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const counts = new Map<WriteLimit, number>();
  const visit = (set: SelectionSetNode): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (name.startsWith('__')) continue;
        const bucket = name in WRITE_LIMIT_OF ? WRITE_LIMIT_OF[name] : 'mutations';
        if (bucket) counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet);
      } else {
        // Validation has refused cycles and unknown fragments already.
        const fragment = fragments.get(selection.name.value);
        if (fragment) visit(fragment.selectionSet);
      }
    }
  };
  visit(root);
  return counts;
}
