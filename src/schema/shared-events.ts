/**
 * Field extension for subscription root fields whose `resolve` reads only the
 * event, never the field's arguments (those choose and position the source
 * stream): one execution of an event then serves every subscriber of this
 * process with the same selection. The transport's shared-execution plugin
 * reads it (docs/architecture.md).
 */
export const sharedEvents = { sharedEvents: true } as const;
