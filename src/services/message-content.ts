import type { Message } from '../generated/prisma/client.ts';
import type { MessageSnapshot } from '../bus/events.ts';
import { badInput } from './errors.ts';
import { closeBidi } from './text-policy.ts';

/**
 * A message's content: what it may hold, checked before anything is written,
 * and what the channel log carries of it. Lengths count characters as people
 * do; U+0000, which PostgreSQL text and jsonb cannot hold, is refused as
 * input instead of failing the insert.
 */

/** Longest `customFields` accepted, as serialized JSON: room for metadata, not a file store. */
export const CUSTOM_FIELDS_MAX = 10_000;

const NUL = '\u0000';
const nulMessage = (field: string) => `${field} must not contain NUL (U+0000) characters`;

/** Length as people count it: an emoji is one character, not two UTF-16 units. */
function characters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(NUL);
  if (Array.isArray(value)) return value.some(containsNul);
  if (value && typeof value === 'object') return Object.entries(value).some(([key, v]) => key.includes(NUL) || containsNul(v));
  return false;
}

/** A body as it is stored: trimmed, not empty, at most `max` characters. */
export function cleanBody(body: string, max: number): string {
  const trimmed = body.trim();
  if (!trimmed) throw badInput('body', 'body must not be empty');
  if (characters(trimmed) > max) throw badInput('body', `body must be at most ${max} characters`);
  if (trimmed.includes(NUL)) throw badInput('body', nulMessage('body'));
  // What a client shows after the message must not be reordered by it.
  return closeBidi(trimmed);
}

/** The key that makes a send idempotent, when there is one. */
export function checkClientMessageId(id: string | null | undefined): void {
  if (id === undefined || id === null) return;
  if (!id.trim() || id.length > 100) throw badInput('clientMessageId', 'clientMessageId must be 1 to 100 characters');
  if (id.includes(NUL)) throw badInput('clientMessageId', nulMessage('clientMessageId'));
}

export function checkCustomFields(value: unknown): void {
  if (value === undefined || value === null) return;
  if (JSON.stringify(value).length > CUSTOM_FIELDS_MAX) {
    throw badInput('customFields', `customFields must be at most ${CUSTOM_FIELDS_MAX} characters as JSON`);
  }
  if (containsNul(value)) throw badInput('customFields', nulMessage('customFields'));
}

/** What the channel log and live subscribers carry for a message (DESIGN §1.3: full payload). */
export function messageSnapshot(m: Message): MessageSnapshot {
  return {
    id: m.id,
    channelId: m.channelId,
    seq: m.seq,
    senderId: m.senderId,
    body: m.body,
    parentId: m.parentId,
    clientMessageId: m.clientMessageId,
    customFields: m.customFields,
    editedAt: m.editedAt?.toISOString() ?? null,
    deletedAt: m.deletedAt?.toISOString() ?? null,
    createdAt: m.createdAt.toISOString(),
  };
}
