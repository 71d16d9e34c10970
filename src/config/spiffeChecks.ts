/**
 * Checks of the SPIFFE settings that span several fields (docs/workload-identity.md), run once
 * when the config is loaded: each problem names its field and the fix.
 */
import type { Config } from "./schema.js";

const LOOPBACK = new Set(["127.0.0.1", "[::1]", "localhost"]);

/** `field: problem` lines; empty when the SPIFFE settings hold together. */
export function spiffeConfigProblems(config: Config): string[] {
  const problems: string[] = [];
  const spiffe = config.spiffe;
  const tls = config.listen.tls;
  if (tls && tls.clientAuth !== "none" && spiffe === undefined)
    problems.push(
      `listen.tls.clientAuth: ${tls.clientAuth} needs spiffe.trustDomains (the bundles that verify client certificates)`,
    );
  spiffe?.trustDomains.forEach((td, i) => {
    if (!("endpoint" in td.bundle)) return;
    const url = new URL(td.bundle.endpoint);
    if (url.protocol === "http:" && !(LOOPBACK.has(url.hostname) && config.environment === "dev"))
      problems.push(
        `spiffe.trustDomains.${i}.bundle.endpoint: must be https (plain http only to 127.0.0.1 in the dev environment)`,
      );
    if (url.username !== "" || url.password !== "")
      problems.push(`spiffe.trustDomains.${i}.bundle.endpoint: remove the credentials from the URL`);
  });
  const domains = new Set(spiffe?.trustDomains.map((t) => t.name) ?? []);
  for (const [name, server] of Object.entries(config.servers)) {
    if (server.transport !== "http" || server.tls === undefined) continue;
    const field = `servers.${name}.tls`;
    if (new URL(server.url).protocol !== "https:")
      problems.push(`servers.${name}.url: tls.spiffe needs an https URL`);
    const td = server.tls.spiffe.trustDomain ?? /^spiffe:\/\/([^/]*)/.exec(server.tls.spiffe.id)?.[1] ?? "";
    if (server.tls.svid.bundle === undefined && !domains.has(td))
      problems.push(
        `${field}.spiffe: trust domain ${JSON.stringify(td)} is not in spiffe.trustDomains; add it there or set ${field}.svid.bundle`,
      );
  }
  return problems;
}
