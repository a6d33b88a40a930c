import { lexicographicSortSchema } from 'graphql';
import { builder } from './builder.ts';
import './scalars.ts';
import './user.ts';
import './session.ts';
import './project.ts';
import './channel.ts';
import './message.ts';
import './mention.ts';
import './reaction.ts';
import './pin.ts';
import './attachment.ts';
import './attachment-lists.ts';
import './attachment-removal.ts';
import './delivery.ts';
import './channel-events.ts';
import './typing.ts';
import './viewer-events.ts';
import './presence.ts';
import './client-request.ts';
import './support-ticket.ts';
import './notification.ts';
import './audit.ts';
import './api-key.ts';
import './entity-link.ts';
import './node.ts';

/** The executable schema, fields sorted so the printed schema is stable. */
export const schema = lexicographicSortSchema(builder.toSchema());
