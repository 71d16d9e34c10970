/**
 * Which way the dependencies of src/ point (docs/architecture.md draws the same layers).
 * Run with `npm run deps` (dependency-cruiser lives apart in tools/depcruise: it parses
 * TypeScript with TypeScript 5, the project compiles with TypeScript 7).
 *
 * The layers, bottom to top; a folder may import the ones below it, never the ones above:
 *
 *   core/, version.ts   the leaf: errors, principal, scope, canonical JSON, key derivation,
 *                       sealing, JSON reply / SSE framing. Imports nothing else from src/.
 *   config/             the typed schema and its defaults. Imports only core/.
 *   store/              the storage boundary. Imports only core/ (and its own migrations).
 *   telemetry/, classify/, audit/
 *                       logging/metrics, reading an MCP message, the audit trail.
 *   authn/ → authz/     who is calling; may they. authz may read authn's types, never the
 *                       reverse (no circle: both read principal and scope from core/).
 *   oauth/              the built-in authorization server (reads authn and authz).
 *   tasks/              task-bound credentials: mints, verifies and ends task tokens (reads
 *                       authn, authz, oauth's signing keys, audit). oauth/ sees only its types
 *                       (tasks/types.ts): the token exchange receives the service at startup.
 *   review/             runtime approval of held calls.
 *   forward/            the hop to the upstream MCP server: never decides (no authz/policy).
 *   pipeline/, listener/ the request path and its HTTP adapter; only gateway.ts (and tests)
 *                       build them.
 *   admin/              the operations the CLI and the console share (keys, users, clients,
 *                       approvals, audit search).
 *   console/, cli/      two faces of admin/. The console never imports the CLI.
 *   gateway.ts          the composition root; only the CLI's entry imports it.
 *
 * Type-only imports count (tsPreCompilationDeps): a type is a dependency as much as a value.
 */

/** A folder's path pattern (a folder of src/, or a file directly in src/). */
const dir = (name) => `^src/${name}(/|\\.ts$)`;
/** Every src/ module outside the given folders. */
const outside = (...names) => ({ path: "^src/", pathNot: names.map(dir) });

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "No import cycles. The one exception: each numbered migration imports its index for " +
        "the `StoreDialect` type (a type-only import, erased at compile time) and the index " +
        "imports every migration to list them in order; the circle is the registry's shape and " +
        "cannot affect module evaluation.",
      from: { pathNot: "^src/store/migrations/" },
      to: { circular: true },
    },
    {
      name: "core-is-the-leaf",
      severity: "error",
      comment: "src/core/ (and version.ts) is what everything shares; it imports nothing else from src/.",
      from: { path: ["^src/core/", "^src/version\\.ts$"] },
      to: outside("core"),
    },
    {
      name: "config-owns-its-defaults",
      severity: "error",
      comment:
        "src/config/ holds the schema and its defaults; it reads only core/. A module that needs " +
        "a default reads it from config/, not the reverse.",
      from: { path: dir("config") },
      to: outside("config", "core", "version"),
    },
    {
      name: "store-is-the-boundary",
      severity: "error",
      comment: "src/store/ is below every domain module: it imports only core/ and its own migrations.",
      from: { path: dir("store") },
      to: outside("store", "core"),
    },
    {
      name: "low-layers-stay-low",
      severity: "error",
      comment:
        "telemetry/, classify/ and audit/ serve the request path and the admin tools; they never " +
        "import authentication, authorization, OAuth, review, forwarding or any face of the gateway.",
      from: { path: [dir("telemetry"), dir("classify"), dir("audit")] },
      to: {
        path: [
          dir("authn"),
          dir("authz"),
          dir("oauth"),
          dir("review"),
          dir("forward"),
          dir("pipeline"),
          dir("listener"),
          dir("admin"),
          dir("console"),
          dir("cli"),
          dir("gateway"),
        ],
      },
    },
    {
      name: "authn-does-not-import-authz",
      severity: "error",
      comment:
        "authn and authz never import each other in a circle: authz may read authn's types, " +
        "authn never reads authz (shared notions such as principal and scope live in core/).",
      from: { path: dir("authn") },
      to: { path: [dir("authz"), dir("oauth"), dir("review"), dir("audit"), dir("classify"), dir("tasks")] },
    },
    {
      name: "authz-decides-alone",
      severity: "error",
      comment: "authz/ decides over typed values; it never reaches up into OAuth, review or forwarding.",
      from: { path: dir("authz") },
      to: { path: [dir("oauth"), dir("review"), dir("forward"), dir("audit"), dir("tasks")] },
    },
    {
      name: "oauth-below-review",
      severity: "error",
      comment: "The authorization server does not depend on runtime review or on the request path.",
      from: { path: dir("oauth") },
      to: { path: [dir("review"), dir("forward")] },
    },
    {
      name: "oauth-sees-tasks-through-their-types",
      severity: "error",
      comment:
        "The authorization server mints and ends tasks through the TaskMinter / TaskEnder " +
        "interfaces of src/tasks/types.ts, handed to it at startup; tasks/ itself reads oauth's " +
        "signing keys, so anything more would be a circle.",
      from: { path: dir("oauth") },
      to: { path: dir("tasks"), pathNot: "^src/tasks/types\\.ts$" },
    },
    {
      name: "tasks-below-the-request-path",
      severity: "error",
      comment:
        "src/tasks/ is domain code: the pipeline charges budgets through it and the CLI and the " +
        "console create tasks with it; it never reads them, review or forwarding.",
      from: { path: dir("tasks") },
      to: {
        path: [
          dir("review"),
          dir("forward"),
          dir("pipeline"),
          dir("listener"),
          dir("admin"),
          dir("console"),
          dir("cli"),
          dir("gateway"),
        ],
      },
    },
    {
      name: "forward-never-decides",
      severity: "error",
      comment:
        "forward/ carries an already-decided call to the upstream; it imports no policy, no " +
        "authentication and no review.",
      from: { path: dir("forward") },
      to: { path: [dir("authz"), dir("authn"), dir("oauth"), dir("review"), dir("audit")] },
    },
    {
      name: "domain-below-the-faces",
      severity: "error",
      comment:
        "Domain modules never import the pipeline, the listener, the admin layer, the console, " +
        "the CLI or the composition root.",
      from: {
        path: [
          dir("core"),
          dir("config"),
          dir("store"),
          dir("telemetry"),
          dir("classify"),
          dir("audit"),
          dir("authn"),
          dir("authz"),
          dir("oauth"),
          dir("review"),
          dir("forward"),
          dir("demo"),
        ],
      },
      to: {
        path: [dir("pipeline"), dir("listener"), dir("admin"), dir("console"), dir("cli"), dir("gateway")],
      },
    },
    {
      name: "listener-only-from-the-root",
      severity: "error",
      comment:
        "The listener (HTTP adapter) is built by the composition root only: nothing but " +
        "src/gateway.ts and the CLI's entry (and tests) imports src/listener/.",
      from: { path: "^src/", pathNot: [dir("listener"), "^src/gateway\\.ts$", "^src/cli/main\\.ts$"] },
      to: { path: dir("listener") },
    },
    {
      name: "pipeline-below-the-listener",
      severity: "error",
      comment: "The request pipeline is what the listener runs; it never reads the HTTP adapter or the faces.",
      from: { path: dir("pipeline") },
      to: { path: [dir("listener"), dir("admin"), dir("console"), dir("cli"), dir("gateway")] },
    },
    {
      name: "admin-below-its-faces",
      severity: "error",
      comment:
        "src/admin/ holds the operations the CLI and the console share; it knows neither of them, " +
        "nor the request path.",
      from: { path: dir("admin") },
      to: {
        path: [dir("console"), dir("cli"), dir("listener"), dir("pipeline"), dir("forward"), dir("gateway")],
      },
    },
    {
      name: "console-never-imports-the-cli",
      severity: "error",
      comment:
        "The console and the CLI are two faces of src/admin/: what both need lives there. The " +
        "console does not reach into the request path or the composition root either.",
      from: { path: dir("console") },
      to: { path: [dir("cli"), dir("listener"), dir("pipeline"), dir("forward"), dir("gateway")] },
    },
    {
      name: "console-reaches-oauth-tables-through-admin",
      severity: "error",
      comment: "The console reads users, clients and consents through src/admin/, not the OAuth tables.",
      from: { path: dir("console") },
      to: { path: "^src/oauth/database\\.ts$" },
    },
    {
      name: "cli-never-imports-the-console",
      severity: "error",
      comment: "The CLI reaches the request path only by starting the gateway (src/gateway.ts).",
      from: { path: dir("cli") },
      to: { path: [dir("console"), dir("listener"), dir("pipeline")] },
    },
    {
      name: "gateway-only-from-the-cli",
      severity: "error",
      comment:
        "The composition root is started by the CLI's `start` command (and by tests), never imported by a part.",
      from: { path: "^src/", pathNot: ["^src/gateway\\.ts$", "^src/cli/start\\.ts$"] },
      to: { path: "^src/gateway\\.ts$" },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|node_modules)/" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
