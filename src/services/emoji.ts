import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { badInput } from './errors.ts';

/**
 * Emoji a reaction may be: every fully-qualified emoji of the Unicode emoji
 * list (emojibase-data, English dataset), with all skin tones, ZWJ sequences,
 * keycaps and flags, and the shortcodes of GitHub, Slack (iamcal) and
 * emojibase. Loaded once, when the module is first imported (app start).
 *
 * A reaction is stored as Unicode's fully-qualified form, so 👍 and 👍️ (with
 * a needless VS16), or ❤ and ❤️ (without the VS16 it needs) are one reaction.
 */

interface EmojiEntry {
  hexcode: string;
  /** 0: text presentation by default (needs VS16 as an emoji); 1: emoji presentation. */
  type: 0 | 1;
  /** Absent for regional indicator letters; 2 for components (skin tones, hair). */
  group?: number;
  skins?: EmojiEntry[];
}
type Shortcodes = Record<string, string | string[]>;

const require = createRequire(import.meta.url);
/** Reads a dataset file of emojibase-data (parsed once, not kept in the module cache). */
const dataset = <T>(file: string): T => JSON.parse(readFileSync(require.resolve(`emojibase-data/en/${file}`), 'utf8')) as T;

const SELECTORS = /[\uFE0E\uFE0F]/g;
/** The comparison key: variation selectors dropped, so qualified, minimally-qualified and unqualified forms meet. */
const keyOf = (text: string) => text.replace(SELECTORS, '');

/** Unicode's fully-qualified form: emojibase's hexcode, plus VS16 for a lone code point that is text by default. */
function qualified(entry: EmojiEntry): string {
  const points = entry.hexcode.split('-').map((hex) => parseInt(hex, 16));
  const text = String.fromCodePoint(...points);
  return points.length === 1 && entry.type === 0 ? `${text}\uFE0F` : text;
}

/** The lookup tables, built once when the module is first imported: emoji by key, and by shortcode. */
function load() {
  const byKey = new Map<string, string>();
  const byHexcode = new Map<string, string>();
  for (const entry of dataset<EmojiEntry[]>('data.json')) {
    // Skin tone swatches, hair components and lone regional indicators are parts of emoji, not emoji.
    if (entry.group === undefined || entry.group === 2) continue;
    for (const e of [entry, ...(entry.skins ?? [])]) {
      const emoji = qualified(e);
      byKey.set(keyOf(emoji), emoji);
      byHexcode.set(e.hexcode, emoji);
    }
  }
  const byShortcode = new Map<string, string>();
  // Earlier sets win a name two of them give to different emoji.
  for (const set of ['github', 'iamcal', 'emojibase']) {
    for (const [hexcode, names] of Object.entries(dataset<Shortcodes>(`shortcodes/${set}.json`))) {
      const emoji = byHexcode.get(hexcode);
      if (!emoji) continue;
      for (const name of typeof names === 'string' ? [names] : names) if (!byShortcode.has(name)) byShortcode.set(name, emoji);
    }
  }
  return { byKey, byShortcode };
}
const { byKey, byShortcode } = load();

const SHORTCODE = /^:?([a-z0-9_+-]{1,60}):?$/i;
const INPUT_MAX = 64;
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * The emoji a reaction input stands for, in its stored form: one emoji
 * grapheme (any qualification) or a known shortcode (`:thumbsup:` or
 * `thumbsup`). Anything else is BAD_USER_INPUT on `field`.
 */
export function parseEmoji(input: string, field = 'emoji'): string {
  const text = input.trim();
  if (text.length === 0 || text.length > INPUT_MAX) throw badInput(field, 'emoji must be one emoji or a shortcode such as :thumbsup:');
  const emoji = byKey.get(keyOf(text));
  if (emoji) return emoji;
  const shortcode = SHORTCODE.exec(text);
  if (shortcode) {
    const named = byShortcode.get(shortcode[1]!.toLowerCase());
    if (named) return named;
    throw badInput(field, `Unknown emoji shortcode: ${text}`);
  }
  const count = [...graphemes.segment(text)].length;
  throw badInput(field, count > 1 ? 'emoji must be a single emoji, not several characters' : 'emoji is not a known emoji');
}
