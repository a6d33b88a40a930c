import { isDeepStrictEqual } from 'node:util';
import type { Prisma, Channel, ChannelKind, ChannelVisibility } from '../generated/prisma/client.ts';
import type { ChannelChange } from '../bus/events.ts';
import { badInput } from './errors.ts';
import { checkCustomFields } from './message-content.ts';
import { hiddenCharacterIn } from './text-policy.ts';

/**
 * A channel's settings as updateChannel and createChannel take them: what
 * each may hold, checked before anything is written, and which of them a
 * change really changes (what CHANNEL_UPDATED carries).
 */

/** What updateChannel may change: a key that is absent stays as it is; null clears topic, description and customFields. */
export interface ChannelUpdate {
  name?: string | null;
  topic?: string | null;
  description?: string | null;
  customFields?: unknown;
  visibility?: ChannelVisibility | null;
  membersMayPin?: boolean | null;
  slowModeSeconds?: number | null;
}

export const CHANNEL_NAME_MAX = 80;
export const CHANNEL_TOPIC_MAX = 250;
export const CHANNEL_DESCRIPTION_MAX = 2000;
/** Longest slow mode: one message a day, more than any real channel asks for. */
export const SLOW_MODE_MAX_SECONDS = 86_400;

export type Settings = Pick<
  Channel,
  'name' | 'topic' | 'description' | 'customFields' | 'visibility' | 'membersMayPin' | 'slowModeSeconds'
>;

/** `update` checked: names trimmed, lengths and kinds enforced. Throws BAD_USER_INPUT. */
export function checkedUpdate(kind: ChannelKind, update: ChannelUpdate): Partial<Settings> {
  const out: Partial<Settings> = {};
  if (update.name !== undefined) {
    if (kind === 'DIRECT') throw badInput('name', 'Direct conversations have no name');
    out.name = checkName(update.name);
  }
  if (update.topic !== undefined) out.topic = checkText('topic', update.topic, CHANNEL_TOPIC_MAX);
  if (update.description !== undefined) out.description = checkText('description', update.description, CHANNEL_DESCRIPTION_MAX);
  if (update.customFields !== undefined) {
    const value = update.customFields;
    if (value !== null && (typeof value !== 'object' || Array.isArray(value)))
      throw badInput('customFields', 'customFields must be a JSON object');
    checkCustomFields(value);
    out.customFields = value as Prisma.JsonValue;
  }
  if (update.visibility !== undefined) out.visibility = checkVisibility(kind, update.visibility);
  if (update.membersMayPin !== undefined) {
    if (update.membersMayPin === null) throw badInput('membersMayPin', 'membersMayPin is true or false');
    out.membersMayPin = update.membersMayPin;
  }
  if (update.slowModeSeconds !== undefined) {
    const seconds = update.slowModeSeconds ?? 0;
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > SLOW_MODE_MAX_SECONDS)
      throw badInput('slowModeSeconds', `slowModeSeconds must be 0 (off) to ${SLOW_MODE_MAX_SECONDS}`);
    if (seconds > 0 && kind === 'DIRECT') throw badInput('slowModeSeconds', 'Direct conversations have no slow mode');
    out.slowModeSeconds = seconds;
  }
  return out;
}

export function checkName(name: string | null): string {
  const trimmed = name?.trim() ?? '';
  if (!trimmed || trimmed.length > CHANNEL_NAME_MAX) throw badInput('name', `name must be 1 to ${CHANNEL_NAME_MAX} characters`);
  const hidden = hiddenCharacterIn(trimmed);
  if (hidden) throw badInput('name', `name ${hidden}`);
  return trimmed;
}

export function checkText(field: string, value: string | null, max: number): string | null {
  if (value === null) return null;
  if (value.length > max) throw badInput(field, `${field} must be at most ${max} characters`);
  if (value.includes('\u0000')) throw badInput(field, `${field} must not contain NUL (U+0000) characters`);
  return value;
}

export function checkVisibility(kind: ChannelKind, visibility: ChannelVisibility | null): ChannelVisibility {
  if (visibility === null) throw badInput('visibility', 'visibility is PRIVATE or PUBLIC');
  if (visibility === 'PUBLIC' && kind !== 'GROUP') throw badInput('visibility', 'Only GROUP channels can be public');
  return visibility;
}

/** The keys of `wanted` that differ from the channel as it is, as CHANNEL_UPDATED carries them. */
export function changesOf(channel: Settings, wanted: Partial<Settings>): ChannelChange {
  const change: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(wanted) as [keyof Settings, unknown][]) {
    // jsonb keeps no key order, so custom fields compare by value.
    if (!isDeepStrictEqual(channel[key], value)) change[key] = value;
  }
  return change as ChannelChange;
}
