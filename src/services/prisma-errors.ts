/**
 * Whether `error` is Prisma's unique-constraint violation (P2002), optionally on
 * a constraint that names `field`. Through driver adapters Prisma reports the
 * violated index name (e.g. `Organization_slug_key`) instead of field names.
 */
export function isUniqueViolation(error: unknown, field?: string): boolean {
  if (typeof error !== 'object' || error === null || (error as { code?: unknown }).code !== 'P2002') return false;
  if (!field) return true;
  type Constraint = { fields?: string[]; index?: string };
  const meta = (error as { meta?: { target?: unknown; driverAdapterError?: { cause?: { constraint?: Constraint } } } }).meta;
  const constraint = meta?.driverAdapterError?.cause?.constraint;
  const target = meta?.target ?? constraint?.fields ?? constraint?.index;
  return Array.isArray(target) ? target.some((t) => String(t).includes(field)) : String(target ?? '').includes(field);
}
