import { DateTimeResolver, EmailAddressResolver, JSONResolver, NonEmptyStringResolver } from 'graphql-scalars';
import { builder } from './builder.ts';

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);
builder.addScalarType('EmailAddress', EmailAddressResolver);
builder.addScalarType('NonEmptyString', NonEmptyStringResolver);

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
