import type { Context } from './context.ts';
import { badInput } from '../services/errors.ts';

/**
 * `maxSize` for every connection: the configured page cap
 * (`limits.pageSizeMax`). Pothos would silently cut a larger `first`/`last`
 * down to the cap; a client asking for more gets a clear error instead of a
 * short page it could mistake for the end.
 */
export function pageCap(args: { first?: number | null; last?: number | null }, ctx: Context): number {
  const max = ctx.services.config.limits.pageSizeMax;
  for (const name of ['first', 'last'] as const) {
    const size = args[name];
    if (size != null && size > max) throw badInput(name, `${name} must be at most ${max}`);
  }
  return max;
}

/**
 * One forward page of a keyset connection from `first + 1` loaded items: the
 * extra item only tells that a next page exists.
 */
export function keysetPage<T, N>(items: T[], first: number, cursorOf: (item: T) => string, nodeOf: (item: T) => N) {
  const edges = items.slice(0, first).map((item) => ({ cursor: cursorOf(item), node: nodeOf(item) }));
  return {
    edges,
    pageInfo: {
      hasNextPage: items.length > first,
      hasPreviousPage: false,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}
