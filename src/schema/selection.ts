/**
 * A mutation's row, re-read with the selection Pothos planned when the client
 * asked for relations or counts. Services write with their own statements, so
 * the row they return has columns only; plain columns need no second query.
 */
export async function withSelection<T>(
  query: { select?: unknown; include?: unknown },
  row: T,
  reload: (query: { select?: never; include?: never }) => Promise<T>,
): Promise<T> {
  return query.select || query.include ? reload(query as { select?: never; include?: never }) : row;
}
