import { Prisma } from '../generated/prisma/client.ts';

const models = {
  Attachment: Prisma.AttachmentScalarFieldEnum,
  Channel: Prisma.ChannelScalarFieldEnum,
  ChannelMember: Prisma.ChannelMemberScalarFieldEnum,
  ClientRequest: Prisma.ClientRequestScalarFieldEnum,
  Message: Prisma.MessageScalarFieldEnum,
  SupportTicket: Prisma.SupportTicketScalarFieldEnum,
};

const lists = new Map<string, Prisma.Sql>();

/**
 * A model's columns, spelled out, for raw statements that return whole rows.
 * Statements are prepared once per connection (see `statementNames`), and
 * PostgreSQL refuses to run a prepared `SELECT *` whose row type changed
 * under it ("cached plan must not change result type"): with `*`, a column
 * added by a migration would break the processes still running the old code
 * during a rolling deploy. A list of the columns this code knows does not
 * change when columns are added.
 */
export function columns(model: keyof typeof models, alias?: string): Prisma.Sql {
  const key = `${model}:${alias ?? ''}`;
  let list = lists.get(key);
  if (!list) {
    const prefix = alias ? `${alias}.` : '';
    list = Prisma.raw(
      Object.values(models[model])
        .map((column) => `${prefix}"${column}"`)
        .join(', '),
    );
    lists.set(key, list);
  }
  return list;
}
