/**
 * The console's policy page: the policy in force (its rules and source files) and the explain
 * form, which builds the same policy input `portcullis policy explain` builds
 * (../authz/policy/cases.ts explainInput) and shows the decision with its rule trace.
 */
import { readFileSync } from "node:fs";
import { explainInput } from "../authz/policy/cases.js";
import type { CompiledPolicy } from "../authz/policy/types.js";
import { ConfigError } from "../config/load.js";
import type { ConsoleRoutes } from "./access.js";
import { type ExplainForm, policiesPage } from "./pages.js";

const TIERS = ["read", "write", "destructive"];

/** The policy's source files as they are on disk now (null when one cannot be read). */
function policyFiles(policy: CompiledPolicy) {
  return policy.sources.map((path) => {
    try {
      return { path, text: readFileSync(path, "utf8") };
    } catch {
      return { path, text: null };
    }
  });
}

export function registerPolicyRoutes(routes: ConsoleRoutes): void {
  const { deps } = routes;

  routes.get("/console/policies", async (_req, reply, a) => {
    const policy = deps.policy();
    return routes.page(
      reply,
      a,
      "Policies",
      "/console/policies",
      policiesPage(policy, policyFiles(policy), a.csrf),
    );
  });

  routes.post("/console/policies/explain", async (_req, reply, a, f) => {
    const field = (name: keyof ExplainForm, max = 2000) => (f.get(name) ?? "").trim().slice(0, max);
    const explain: ExplainForm = {
      principal: field("principal"),
      server: field("server", 100),
      method: field("method", 100) || "tools/call",
      tool: field("tool", 500),
      tier: TIERS.includes(field("tier")) ? field("tier") : "",
      args: field("args", 8000) || "{}",
    };
    const policy = deps.policy();
    let result: ReturnType<CompiledPolicy["explain"]> | null = null;
    let error: string | null = null;
    try {
      const input = explainInput(
        {
          principal: explain.principal,
          server: explain.server,
          method: explain.method,
          ...(explain.tool === "" ? {} : { tool: explain.tool }),
          ...(explain.tier === "" ? {} : { tier: explain.tier }),
          args: explain.args,
        },
        deps.config,
      );
      result = policy.explain(input);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      error = err.message.replace(/^--/, "");
    }
    return routes.page(
      reply,
      a,
      "Policies",
      "/console/policies",
      policiesPage(policy, policyFiles(policy), a.csrf, { form: explain, result, error }),
      error === null ? 200 : 400,
    );
  });
}
