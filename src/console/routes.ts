/**
 * The admin web console at /console (docs/console.md): its static assets, and the pages
 * registered by concern. Who may see a page and send a form is checked once, in ./access.ts;
 * what a page changes goes through src/admin/, the operations the CLI runs too, and is
 * audited there.
 */
import type { FastifyInstance } from "fastify";
import { type ConsoleDeps, ConsoleRoutes } from "./access.js";
import { CONSOLE_CSS, CONSOLE_JS } from "./assets.js";
import { registerCredentialRoutes } from "./credentialRoutes.js";
import { registerOversightRoutes } from "./oversightRoutes.js";
import { registerPolicyRoutes } from "./policyRoutes.js";
import { registerServerRoutes } from "./serverRoutes.js";
import { registerSignInRoutes } from "./signInRoutes.js";
import { registerTaskRoutes } from "./taskRoutes.js";

export type { ConsoleDeps } from "./access.js";

const ASSET_HEADERS = { "cache-control": "public, max-age=300", "x-content-type-options": "nosniff" };

export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): void {
  app.get("/console/assets/console.css", async (_req, reply) =>
    reply.headers(ASSET_HEADERS).type("text/css; charset=utf-8").send(CONSOLE_CSS),
  );
  app.get("/console/assets/console.js", async (_req, reply) =>
    reply.headers(ASSET_HEADERS).type("text/javascript; charset=utf-8").send(CONSOLE_JS),
  );
  const routes = new ConsoleRoutes(app, deps);
  registerSignInRoutes(routes);
  registerOversightRoutes(routes);
  registerCredentialRoutes(routes);
  registerPolicyRoutes(routes);
  registerServerRoutes(routes);
  registerTaskRoutes(routes, deps.tasks);
}
