import { builder } from './builder.ts';
import { ErasureMessagePolicy as ErasureMessagePolicyValues } from '../generated/prisma/enums.ts';
import { SearchLanguage as SearchLanguageValues } from '../generated/prisma/enums.ts';

builder.prismaObjectField('Organization', 'messageRetentionDays', (t) =>
  t.exposeInt('messageRetentionDays', {
    nullable: true,
    description: 'Messages older than this many days are deleted for good by the retention job; null when the policy is off.',
  }),
);

const ErasureMessagePolicy = builder.enumType(ErasureMessagePolicyValues, {
  name: 'ErasureMessagePolicy',
  description: 'What erasing a user (eraseUser) does with the messages they sent; their profile is anonymized either way.',
  values: {
    DELETE: { description: 'Every message they sent is deleted for good, as a hard delete (the channel logs keep a tombstone).' },
    KEEP: { description: 'Their messages stay, shown under the anonymized profile.' },
  },
});

builder.prismaObjectField('Organization', 'erasureMessagePolicy', (t) =>
  t.expose('erasureMessagePolicy', { type: ErasureMessagePolicy, description: 'What erasing a user does with their messages.' }),
);

const SearchLanguage = builder.enumType(SearchLanguageValues, {
  name: 'SearchLanguage',
  description: 'The language search stems words in; accents are ignored in every one.',
  values: {
    ENGLISH: { description: 'English stemming: "decisions" finds "decision".' },
    SPANISH: { description: 'Spanish stemming: "decisiones" finds "decisión".' },
    SIMPLE: { description: 'No stemming: words match as written (and as prefixes of the last word).' },
  },
});

builder.prismaObjectField('Organization', 'searchLanguage', (t) =>
  t.expose('searchLanguage', { type: SearchLanguage, description: 'The language search stems its content in.' }),
);

const UpdateOrganizationSettingsInput = builder.inputType('UpdateOrganizationSettingsInput', {
  fields: (t) => ({
    messageRetentionDays: t.int({
      required: false,
      description:
        'Days after which messages are deleted for good (content gone, channel logs stay gap-free); null or 0 turns the policy off.',
    }),
    searchLanguage: t.field({
      type: SearchLanguage,
      required: false,
      description: 'New content is indexed in it at once; existing content is re-indexed in the background.',
    }),
    erasureMessagePolicy: t.field({
      type: ErasureMessagePolicy,
      required: false,
      description: 'What erasing a user does with the messages they sent from now on (null keeps the setting).',
    }),
  }),
});

builder.mutationFields((t) => ({
  updateOrganizationSettings: t.withAuth({ admin: true }).prismaField({
    type: 'Organization',
    description: 'Changes the viewer’s organization’s settings (owners and admins). Fields left out keep their value.',
    args: { input: t.arg({ type: UpdateOrganizationSettingsInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      if (input.messageRetentionDays !== undefined) await ctx.services.messageRetention.setPolicy(ctx.viewer, input.messageRetentionDays);
      if (input.searchLanguage != null) await ctx.services.search.setLanguage(ctx.viewer, input.searchLanguage);
      if (input.erasureMessagePolicy != null) await ctx.services.erasure.setPolicy(ctx.viewer, input.erasureMessagePolicy);
      return ctx.prisma.organization.findUniqueOrThrow({ ...query, where: { id: ctx.viewer.organizationId } });
    },
  }),
}));
