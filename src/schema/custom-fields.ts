import { z } from 'zod';
import { CustomFieldEntity as EntityValues, CustomFieldType as TypeValues } from '../generated/prisma/enums.ts';
import { CUSTOM_FIELDS_MAX } from '../services/message-content.ts';
import { builder } from './builder.ts';
import { ClientRequest } from './client-request.ts';
import { SupportTicket } from './support-ticket.ts';

// Custom field definitions (services/custom-fields.ts): admins define the
// fields of channels, messages, requests and tickets; everyone in the
// organization reads the definitions (forms need them); writes of
// `customFields` are checked against them.

const CustomFieldEntity = builder.enumType(EntityValues, {
  name: 'CustomFieldEntity',
  description: 'What a custom field definition describes the fields of.',
});
const CustomFieldType = builder.enumType(TypeValues, { name: 'CustomFieldType' });

const isoDate = (date: Date | null) => (date ? date.toISOString().slice(0, 10) : null);

export const CustomFieldDefinition = builder.prismaObject('CustomFieldDefinition', {
  description:
    'One custom field of the organization\u2019s channels, messages, requests or tickets: its value lives under `key` in the ' +
    'entity\u2019s customFields. Changing a definition never rewrites stored values.',
  fields: (t) => ({
    id: t.globalID({ resolve: (d) => ({ type: 'CustomFieldDefinition', id: d.id }) }),
    entity: t.expose('entity', { type: CustomFieldEntity }),
    key: t.exposeString('key', { description: 'The key in customFields; fixed once created.' }),
    label: t.exposeString('label'),
    type: t.expose('type', {
      type: CustomFieldType,
      description:
        'TEXT: a string; NUMBER: a finite number; BOOLEAN; DATE: "YYYY-MM-DD"; SINGLE_CHOICE: one of options; MULTIPLE_CHOICE: a ' +
        'list of distinct options; USER: the global id of an active user of the organization (stored as the global id).',
    }),
    required: t.exposeBoolean('required', { description: 'Every write of the entity\u2019s customFields must give it.' }),
    options: t.exposeStringList('options', { description: 'The choices of SINGLE_CHOICE and MULTIPLE_CHOICE fields.' }),
    min: t.exposeFloat('min', {
      nullable: true,
      description: 'NUMBER: the least value; TEXT: the least length; MULTIPLE_CHOICE: the fewest items.',
    }),
    max: t.exposeFloat('max', {
      nullable: true,
      description: 'NUMBER: the greatest value; TEXT: the greatest length (default 1000); MULTIPLE_CHOICE: the most items.',
    }),
    minDate: t.string({ nullable: true, description: 'DATE: the earliest date, YYYY-MM-DD.', resolve: (d) => isoDate(d.minDate) }),
    maxDate: t.string({ nullable: true, description: 'DATE: the latest date, YYYY-MM-DD.', resolve: (d) => isoDate(d.maxDate) }),
    position: t.exposeInt('position', { description: 'Order in forms (then by key).' }),
    archived: t.boolean({
      description: 'An archived field no longer validates nor accepts changed values; stored values stay.',
      resolve: (d) => d.archivedAt !== null,
    }),
    archivedAt: t.expose('archivedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date written YYYY-MM-DD');
const label = z.string().max(200);
const options = z.array(z.string().max(200)).max(200);
const customFieldsObject = z.record(z.string(), z.unknown());
const idempotencyKey = z.string().min(1).max(200);

const CreateCustomFieldDefinitionInput = builder.inputType('CreateCustomFieldDefinitionInput', {
  fields: (t) => ({
    entity: t.field({ type: CustomFieldEntity }),
    key: t.string({
      description: 'A letter, then at most 39 letters, digits or underscores; unique per entity, archived fields included.',
    }),
    label: t.string({ validate: label, description: '1 to 80 characters.' }),
    type: t.field({ type: CustomFieldType }),
    required: t.boolean({ required: false }),
    options: t.stringList({ required: false, validate: options, description: 'Choice fields: 1 to 200 distinct options.' }),
    min: t.float({ required: false }),
    max: t.float({ required: false }),
    minDate: t.string({ required: false, validate: date }),
    maxDate: t.string({ required: false, validate: date }),
    position: t.int({ required: false }),
  }),
});

const UpdateCustomFieldDefinitionInput = builder.inputType('UpdateCustomFieldDefinitionInput', {
  description:
    'Only the fields given change; null clears a bound. Stored values are never rewritten: keys a later write leaves as they are ' +
    'stay even if they no longer fit. `type` changes only while no stored value has the key (CONFLICT otherwise).',
  fields: (t) => ({
    id: t.globalID({ for: CustomFieldDefinition }),
    label: t.string({ required: false, validate: label }),
    type: t.field({ type: CustomFieldType, required: false }),
    required: t.boolean({ required: false }),
    options: t.stringList({
      required: false,
      validate: options,
      description: 'Replaces the options; values using a removed option stay as stored.',
    }),
    min: t.float({ required: false }),
    max: t.float({ required: false }),
    minDate: t.string({ required: false, validate: date }),
    maxDate: t.string({ required: false, validate: date }),
    position: t.int({ required: false }),
  }),
});

const fieldsInput = (name: string, description: string, ref: typeof ClientRequest | typeof SupportTicket) =>
  builder.inputType(name, {
    description,
    fields: (t) => ({
      id: t.globalID({ for: ref }),
      customFields: t.field({
        type: 'JSON',
        validate: customFieldsObject,
        description:
          `The whole object (at most ${CUSTOM_FIELDS_MAX} characters serialized): it replaces the stored one. Keys given with ` +
          'their stored value are kept as they are; others are checked against the definitions; null or absent keys are removed.',
      }),
      idempotencyKey: t.string({ required: false, validate: idempotencyKey }),
    }),
  });

const UpdateClientRequestFieldsInput = fieldsInput(
  'UpdateClientRequestFieldsInput',
  'Sets a request\u2019s custom fields: its requester while it is pending, staff at any time.',
  ClientRequest,
);
const UpdateSupportTicketFieldsInput = fieldsInput(
  'UpdateSupportTicketFieldsInput',
  'Sets a ticket\u2019s custom fields: agents, until it is closed.',
  SupportTicket,
);

builder.prismaObjectField('ClientRequest', 'customFields', (t) =>
  t.expose('customFields', { type: 'JSON', nullable: true, description: 'Custom fields, as stored (see customFieldDefinitions).' }),
);
builder.prismaObjectField('SupportTicket', 'customFields', (t) =>
  t.expose('customFields', { type: 'JSON', nullable: true, description: 'Custom fields, as stored (see customFieldDefinitions).' }),
);

builder.queryFields((t) => ({
  customFieldDefinitions: t.withAuth({ authenticated: true }).field({
    type: [CustomFieldDefinition],
    description: 'The organization\u2019s custom fields of an entity, by position then key (every user of the organization reads them).',
    args: {
      entity: t.arg({ type: CustomFieldEntity, required: true }),
      includeArchived: t.arg.boolean({ required: false, description: 'Archived fields too (default: active ones only).' }),
    },
    resolve: (_root, args, ctx) => ctx.services.customFields.list(ctx.viewer, args.entity, args.includeArchived ?? false),
  }),
}));

builder.mutationFields((t) => ({
  createCustomFieldDefinition: t.withAuth({ admin: true }).field({
    type: CustomFieldDefinition,
    description: 'Defines a custom field (owners and admins). CONFLICT when the key exists for the entity, archived or not.',
    args: { input: t.arg({ type: CreateCustomFieldDefinitionInput }) },
    resolve: (_root, { input }, ctx) => ctx.services.customFields.create(ctx.viewer, input),
  }),
  updateCustomFieldDefinition: t.withAuth({ admin: true }).field({
    type: CustomFieldDefinition,
    description: 'Changes a custom field (owners and admins); its key stays. Stored values are not rewritten.',
    args: { input: t.arg({ type: UpdateCustomFieldDefinitionInput }) },
    resolve: (_root, { input }, ctx) => {
      const { id, ...update } = input;
      return ctx.services.customFields.update(ctx.viewer, id.id, update);
    },
  }),
  archiveCustomFieldDefinition: t.withAuth({ admin: true }).field({
    type: CustomFieldDefinition,
    description: 'Archives a custom field (owners and admins): it stops validating and accepting changed values; stored values stay.',
    args: { id: t.arg.globalID({ for: CustomFieldDefinition }) },
    resolve: (_root, args, ctx) => ctx.services.customFields.archive(ctx.viewer, args.id.id),
  }),
  updateClientRequestFields: t.withAuth({ authenticated: true }).prismaField({
    type: 'ClientRequest',
    args: { input: t.arg({ type: UpdateClientRequestFieldsInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const request = await ctx.services.clientRequests.updateFields(ctx.viewer, input.id.id, input.customFields, input.idempotencyKey);
      return ctx.prisma.clientRequest.findUniqueOrThrow({ ...query, where: { id: request.id } });
    },
  }),
  updateSupportTicketFields: t.withAuth({ authenticated: true }).prismaField({
    type: 'SupportTicket',
    args: { input: t.arg({ type: UpdateSupportTicketFieldsInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const ticket = await ctx.services.supportTickets.updateFields(ctx.viewer, input.id.id, input.customFields, input.idempotencyKey);
      return ctx.prisma.supportTicket.findUniqueOrThrow({ ...query, where: { id: ticket.id } });
    },
  }),
}));
