/**
 * The cost of one RFC 8693 token exchange at the built-in authorization server, timed end to
 * end over HTTP at concurrency 1: an API key traded for a task token limited to one tool
 * (docs/token-exchange.md). Each exchange verifies the key, checks the request against it,
 * asks the policy, stores the task, signs its token and writes its audit record.
 */
import { percentile } from "./harness.js";

const GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";

export interface TokenExchangeCost {
  runs: number;
  p50Ms: number;
  p99Ms: number;
}

export async function measureTokenExchange(
  base: string,
  resource: string,
  apiKey: string,
  tool: string,
  runs: number,
): Promise<TokenExchangeCost> {
  const reg = await fetch(`${base}/reg`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "bench task agent",
      grant_types: [GRANT],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: "none",
    }),
  });
  const { client_id } = (await reg.json()) as { client_id: string };
  const body = new URLSearchParams({
    grant_type: GRANT,
    client_id,
    subject_token: apiKey,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    resource,
    authorization_details: JSON.stringify([
      { type: "urn:portcullis:task", purpose: "bench", tools: [tool], lifetime_seconds: 900 },
    ]),
  }).toString();
  const once = async () => {
    const res = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    });
    const answer = (await res.json()) as { access_token?: string };
    if (res.status !== 200 || typeof answer.access_token !== "string")
      throw new Error(`token exchange failed: ${res.status} ${JSON.stringify(answer)}`);
  };
  for (let i = 0; i < Math.min(20, runs); i++) await once(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await once();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return { runs, p50Ms: round(percentile(samples, 50)), p99Ms: round(percentile(samples, 99)) };
}
