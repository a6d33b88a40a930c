import { builder } from './builder.ts';

builder.prismaObjectField('Organization', 'messageRetentionDays', (t) =>
  t.exposeInt('messageRetentionDays', {
    nullable: true,
    description: 'Messages older than this many days are deleted for good by the retention job; null when the policy is off.',
  }),
);

const UpdateOrganizationSettingsInput = builder.inputType('UpdateOrganizationSettingsInput', {
  fields: (t) => ({
    messageRetentionDays: t.int({
      required: false,
      description:
        'Days after which messages are deleted for good (content gone, channel logs stay gap-free); null or 0 turns the policy off.',
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
      return ctx.prisma.organization.findUniqueOrThrow({ ...query, where: { id: ctx.viewer.organizationId } });
    },
  }),
}));
