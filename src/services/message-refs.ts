/**
 * What a message body refers to: `@username` mentions, the `@channel` and
 * `@here` broadcasts, and `@type#id` links to entities. Parsed from the body
 * on send and on edit; nothing inside a code span (`inline` or a ``` fence)
 * counts, nor an `@` inside a word (an e-mail address such as ada@example.com).
 *
 * Ranges are [start, end) offsets in UTF-16 code units, the way JavaScript
 * (and so most GraphQL clients) index strings, and cover the whole token
 * including its `@`.
 */

export type Range = [start: number, end: number];

export interface MessageRefs {
  /** Mentioned usernames, as written, each with every range it occurs at. */
  users: Map<string, Range[]>;
  /** Where the body says @channel, or @here; empty when it does not. */
  channel: Range[];
  here: Range[];
  /** Links by `${typeKey}#${externalId}`. */
  links: Map<string, { typeKey: string; externalId: string; ranges: Range[] }>;
}

/** Most distinct users, and links, one message may refer to: more are left as plain text. */
export const MAX_REFS = 50;

// An @ counts when nothing word-like precedes it (so not in ada@example.com).
// Usernames are 2 to 40 of [a-zA-Z0-9._-]; type keys are lower-case words.
const TOKEN =
  /(?<![\p{L}\p{N}_.+\-@])@(?:([a-z][a-z0-9_]{0,39})#([A-Za-z0-9](?:[A-Za-z0-9._:-]{0,98}[A-Za-z0-9])?)|([A-Za-z0-9._-]{2,40}))/gu;
// Fenced blocks first, then inline spans (a run of backticks closed by the same run).
const CODE = /```[\s\S]*?(?:```|$)|(`+)[^`][\s\S]*?\1/g;

/** Broadcast words: never usernames (registration should refuse them; see BROADCAST_NAMES). */
export const BROADCAST_NAMES: ReadonlySet<string> = new Set(['channel', 'here', 'all', 'everyone']);

export function parseMessageRefs(body: string): MessageRefs {
  const refs: MessageRefs = { users: new Map(), channel: [], here: [], links: new Map() };
  if (!body.includes('@')) return refs;
  const code: Range[] = [];
  for (const m of body.matchAll(CODE)) code.push([m.index, m.index + m[0].length]);
  const inCode = (at: number) => code.some(([s, e]) => at >= s && at < e);
  for (const m of body.matchAll(TOKEN)) {
    if (inCode(m.index)) continue;
    const [token, typeKey, externalId, rawName] = m;
    if (typeKey !== undefined && externalId !== undefined) {
      const key = `${typeKey}#${externalId}`;
      const range: Range = [m.index, m.index + token.length];
      const link = refs.links.get(key);
      if (link) link.ranges.push(range);
      else if (refs.links.size < MAX_REFS) refs.links.set(key, { typeKey, externalId, ranges: [range] });
      continue;
    }
    // A sentence may end right after a name: "thanks @ada." mentions ada.
    const name = rawName!.replace(/[.-]+$/, '');
    if (name.length < 2) continue;
    const range: Range = [m.index, m.index + 1 + name.length];
    const lower = name.toLowerCase();
    if (lower === 'channel' || lower === 'all' || lower === 'everyone') {
      refs.channel.push(range);
    } else if (lower === 'here') {
      refs.here.push(range);
    } else {
      const ranges = refs.users.get(name);
      if (ranges) ranges.push(range);
      else if (refs.users.size < MAX_REFS) refs.users.set(name, [range]);
    }
  }
  return refs;
}

/** Whether a body refers to anything (the common case is not, and costs a send nothing). */
export const hasRefs = (refs: MessageRefs): boolean =>
  refs.users.size > 0 || refs.channel.length > 0 || refs.here.length > 0 || refs.links.size > 0;
