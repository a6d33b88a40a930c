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
