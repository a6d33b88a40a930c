import { z } from 'zod';
import { hiddenCharacterIn } from '../services/text-policy.ts';

/**
 * A name or title as inputs take it: trimmed, 1 to `max` characters, and no
 * invisible or bidirectional control character (services/text-policy.ts).
 */
export const nameText = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .superRefine((value, ctx) => {
      const why = hiddenCharacterIn(value);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    });
