type Constraint = { fields?: string[]; index?: string };
type KnownError = {
  code?: unknown;
  meta?: { target?: unknown; driverAdapterError?: { cause?: { kind?: string; constraint?: Constraint } } };
};

/**
 * Whether `error` is a unique-constraint violation, optionally on a constraint
 * that names `field`. Prisma reports it as P2002 from model queries and as
 * P2010 (raw query failed) from `$queryRaw`; through driver adapters it names
 * the violated index (e.g. `Organization_slug_key`) instead of field names.
 */
export function isUniqueViolation(error: unknown, field?: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, meta } = error as KnownError;
  const cause = meta?.driverAdapterError?.cause;
  if (code !== 'P2002' && !(code === 'P2010' && cause?.kind === 'UniqueConstraintViolation')) return false;
  if (!field) return true;
  const target = meta?.target ?? cause?.constraint?.fields ?? cause?.constraint?.index;
  return Array.isArray(target) ? target.some((t) => String(t).includes(field)) : String(target ?? '').includes(field);
}
