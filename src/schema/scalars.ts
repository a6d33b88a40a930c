import { DateTimeResolver, EmailAddressResolver, JSONResolver, NonEmptyStringResolver } from 'graphql-scalars';
import { builder } from './builder.ts';

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);
builder.addScalarType('EmailAddress', EmailAddressResolver);
builder.addScalarType('NonEmptyString', NonEmptyStringResolver);

// Deny by default: every root field needs a signed-in viewer unless it says
// otherwise (skipTypeScopes: signing in and registering). Fields still state
// their scope with t.withAuth, which also types their context.
builder.queryType({ authScopes: { authenticated: true } });
builder.mutationType({ authScopes: { authenticated: true } });
builder.subscriptionType({ authScopes: { authenticated: true } });
