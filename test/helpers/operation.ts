import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';

/**
 * What a test sends: an operation typed by codegen (the graphql() function
 * from test/generated/, which types the result and the variables), or a plain
 * string, untyped, for a document that is invalid on purpose (a malformed
 * query, an unknown field, one past the depth or alias limits) or that a test
 * builds at run time.
 */
export type Operation<R, V> = TypedDocumentNode<R, V> | string;

/** The text of an operation, as it goes over the wire. */
export function queryText(query: DocumentNode | string): string {
  if (typeof query === 'string') return query;
  // graphql() answers `{}` for a document codegen has not seen: its source changed since test/generated/ was made.
  if (!('kind' in query)) throw new Error('unknown document: run `npm run codegen` to regenerate test/generated/');
  return print(query);
}
