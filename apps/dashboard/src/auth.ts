import { createHash, timingSafeEqual } from 'node:crypto';
import basicAuth from '@fastify/basic-auth';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { Credentials } from './config.js';

/**
 * Puts every route of `scope` (and of the plugins registered in it) behind HTTP
 * basic auth. The 401 is sent from the hook itself: Bull Board installs its own
 * error handler for its routes, which would otherwise turn it into a board error.
 */
export async function requireBasicAuth(scope: FastifyInstance, credentials: Credentials): Promise<void> {
  await scope.register(basicAuth, {
    authenticate: { realm: 'Tally dashboard' },
    validate: async (user, password) => {
      // Both are compared whatever the first gives, so timing tells nothing about which was wrong.
      const userMatches = sameSecret(user, credentials.user);
      const passwordMatches = sameSecret(password, credentials.password);
      if (!(userMatches && passwordMatches)) return new Error('Wrong user or password.');
    },
  });

  const authenticate = scope.basicAuth as onRequestHookHandler;
  scope.addHook('onRequest', function (request, reply, done) {
    authenticate.call(this, request, reply, (error?: Error) => {
      if (!error) return done();
      const missing = (error as { code?: string }).code === 'FST_BASIC_AUTH_MISSING_OR_BAD_AUTHORIZATION_HEADER';
      void reply.status(401).send({
        statusCode: 401,
        error: 'Unauthorized',
        message: missing
          ? 'This dashboard needs a login: send DASHBOARD_USER and DASHBOARD_PASSWORD with HTTP basic auth.'
          : 'Wrong user or password.',
      });
    });
  });
}

/** Constant-time: hashing first makes both sides the same length, so the length of the secret leaks nothing either. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}
