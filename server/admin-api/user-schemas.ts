import { z } from 'zod';
import { EMAIL_MAX, NAME_MAX } from '../http/form.ts';
import { isLocked } from '../protection/lockout.ts';
import { isEmailAddress } from '../users/email-address.ts';
import type { User } from '../users/store.ts';
import { pageOf, pageQuery } from './pages.ts';

// PostgreSQL text cannot hold NUL: refused here, it never reaches SQL as a 500.
const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((v) => !v.includes('\u0000'), 'Must not contain NUL');

const email = text(EMAIL_MAX).refine(isEmailAddress, 'Not an email address');
const aName = text(NAME_MAX).nullable();
const role = z
  .string()
  .regex(/^[\w.:-]{1,64}$/, 'Letters, digits, _ . : - only, at most 64')
  .meta({ description: 'A role name, as in the `roles` claim' });
const roles = z.array(role).max(32);
const flag = z
  .enum(['true', 'false'])
  .transform((v) => v === 'true')
  .optional();

export const idParams = z.object({ id: z.string().meta({ description: 'The user id (sub)' }) });

export const userSchema = z
  .object({
    id: z.string().meta({ description: 'The `sub` apps see' }),
    email: z.string(),
    emailVerified: z.boolean(),
    givenName: z.string().nullable(),
    familyName: z.string().nullable(),
    name: z.string().nullable(),
    roles: z.array(z.string()),
    source: z.enum(['local', 'ldap']).meta({
      description: 'ldap: linked to a directory entry, which manages its names, email and roles',
    }),
    disabled: z.boolean(),
    hasPassword: z.boolean().meta({
      description: 'False for a directory user and for an invited one who has not chosen yet',
    }),
    locked: z.boolean().meta({
      description: 'Locked after failed sign-ins (until lockedUntil), or by its owner',
    }),
    lockedUntil: z.iso.datetime().nullable(),
    ownerLocked: z.boolean().meta({
      description: 'The owner locked it from a security email ("this wasn\'t me")',
    }),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'User' });

export const userPageSchema = pageOf(userSchema, 'UserPage');

export const userListQuery = pageQuery.extend({
  q: text(200).optional().meta({
    description: 'Part of the email or of a name, case-insensitive',
  }),
  role: role.optional(),
  source: z.enum(['local', 'ldap']).optional(),
  disabled: flag,
  locked: flag.meta({ description: 'true: locked after failed sign-ins, or by the owner' }),
});

/** Where a page of users ended: users are listed by lower(email), which is unique. */
export const userCursor = z.object({ e: z.string().max(EMAIL_MAX) });

const names = {
  givenName: aName.optional(),
  familyName: aName.optional(),
  name: aName.optional().meta({ description: 'The full name, when not given + family' }),
};

export const newUserSchema = z
  .strictObject({
    email,
    ...names,
    roles: roles.optional(),
    emailVerified: z.boolean().optional().meta({
      description: 'The admin vouches for the address (default false); an invitation proves it',
    }),
    password: text(1024).optional().meta({
      description: 'Checked by the password policy; or send invite instead',
    }),
    invite: z.literal(true).optional().meta({
      description: 'Email the address a single-use link to choose a password (INVITATION_TTL)',
    }),
  })
  .refine((u) => (u.password === undefined) !== (u.invite === undefined), {
    message: 'Send either password or invite: true',
    path: ['password'],
  })
  .meta({ id: 'NewUser' });

export const userChangeSchema = z
  .strictObject({
    ...names,
    roles: roles.optional(),
    disabled: z.boolean().optional().meta({
      description: 'true also signs the user out everywhere and revokes their grants',
    }),
    email: email.optional().meta({
      description:
        'A new address: with emailVerified it is set at once; without, a confirmation link goes to it and the address changes when it is opened',
    }),
    emailVerified: z.literal(true).optional().meta({
      description: 'The admin vouches for the address (the new one, or else the current one)',
    }),
  })
  .meta({ id: 'UserChange' });

export type UserChange = z.output<typeof userChangeSchema>;

/** Fields a directory user's entry supplies: the next sign-in or sync would undo a change. */
export const DIRECTORY_FIELDS = [
  'givenName',
  'familyName',
  'name',
  'roles',
  'email',
  'emailVerified',
] as const;

const iso = (date: Date | string | null) => (date ? new Date(date).toISOString() : null);

/** A user as the API shows it: never the password hash or lockout counters. */
export function userView(user: User): z.output<typeof userSchema> {
  return {
    id: user.id,
    email: user.email,
    emailVerified: user.email_verified,
    givenName: user.given_name,
    familyName: user.family_name,
    name: user.name,
    roles: user.roles,
    source: user.source,
    disabled: user.disabled,
    hasPassword: user.password_hash !== null,
    locked: isLocked(user),
    lockedUntil: iso(user.locked_until),
    ownerLocked: user.owner_locked_at !== null,
    createdAt: iso(user.created_at)!,
    updatedAt: iso(user.updated_at)!,
  };
}
