import { z } from 'zod';
import type { KeyManager } from '../keys/manager.ts';
import type { Services } from '../services.ts';
import { ApiProblem } from './problems.ts';
import { actorOf } from './bearer.ts';
import { apiRoute, type ApiRoute } from './route.ts';
import { requestFacts } from '../audit/audit.ts';
import { problemSchema } from './openapi.ts';

const keySchema = z
  .object({
    kid: z.string(),
    alg: z.string(),
    state: z.enum(['announced', 'active', 'retiring']).meta({
      description:
        'announced: published, signs from activateAt; active: signs; retiring: published until unpublishAt for what it signed',
    }),
    activateAt: z.iso.datetime(),
    unpublishAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'SigningKey' });

const keyListSchema = z
  .object({
    keys: z.array(keySchema),
    nextChangeAt: z.iso.datetime().nullable().meta({
      description: 'When a key next changes stage by itself',
    }),
  })
  .meta({ id: 'SigningKeys' });

const rotatedSchema = z
  .object({
    announced: z
      .array(z.string())
      .meta({ description: 'Key ids of the new keys, one per algorithm' }),
    activateAt: z.iso.datetime(),
  })
  .meta({ id: 'KeyRotation' });

type Deps = Pick<Services, 'config' | 'audit'> & { keys: KeyManager };

/** Signing keys: their stages, and a rotation now. */
export function keyRoutes({ config, audit, keys }: Deps): ApiRoute[] {
  return [
    apiRoute({
      method: 'get',
      path: '/keys',
      scope: 'keys:write',
      operationId: 'listKeys',
      summary: 'The signing keys and their stages',
      tag: 'Keys',
      responses: { 200: { description: 'The keys, newest first', schema: keyListSchema } },
      async handle() {
        const view = keys.current();
        return {
          status: 200,
          body: {
            keys: view.keys.map((k) => ({
              kid: k.kid,
              alg: k.alg,
              state: k.state,
              activateAt: k.activateAt.toISOString(),
              unpublishAt: k.unpublishAt?.toISOString() ?? null,
            })),
            nextChangeAt: view.nextChange?.toISOString() ?? null,
          },
        };
      },
    }),
    apiRoute({
      method: 'post',
      path: '/keys/rotate',
      scope: 'keys:write',
      operationId: 'rotateKeys',
      summary: 'Announce new signing keys; they sign after KEY_ANNOUNCE_SECONDS',
      tag: 'Keys',
      responses: {
        201: { description: 'New keys announced', schema: rotatedSchema },
        409: { description: 'Another process is rotating now', schema: problemSchema },
      },
      async handle({ caller, ctx }) {
        const announced = await keys.rotate();
        if (!announced.length)
          throw new ApiProblem('conflict', 'Another process is rotating the keys: try again.');
        await audit(
          {
            type: 'keys_rotated',
            outcome: 'success',
            actor: actorOf(caller),
            detail: { kids: announced, by: 'admin_api' },
          },
          requestFacts(ctx),
        );
        const activateAt = new Date(Date.now() + config.keys.announceSeconds * 1000);
        return { status: 201, body: { announced, activateAt: activateAt.toISOString() } };
      },
    }),
  ];
}
