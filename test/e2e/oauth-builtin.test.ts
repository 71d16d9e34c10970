/**
 * OAuth with zero extra steps: on the embedded default (built-in authorization server), an
 * official SDK client given only the server URL discovers the authorization server through
 * protected resource metadata, registers itself (DCR), signs the user in, and calls tools.
 * The browser is an HTTP client that fills in the sign-in and consent forms.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CLI, cleanup, tempDir } from "../helpers/gateway.js";
import { SDK_REDIRECT, SdkClientState } from "../helpers/sdkOAuthClient.js";
import { authorize } from "../oauth/asHarness.js";

const REDIRECT = SDK_REDIRECT;

describe("built-in OAuth on the embedded default", () => {
  const dir = tempDir();
  let proc: ChildProcess;
  let base: string;
  let user: { username: string; password: string };

  before(async () => {
    proc = spawn(process.execPath, [CLI, "start", "--port", "0"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let banner = "";
    proc.stderr?.on("data", (d: Buffer) => {
      banner += d.toString();
    });
    base = await new Promise<string>((resolve, reject) => {
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === "portcullis listening") resolve(entry.url as string);
      });
      proc.on("exit", (code) => reject(new Error(`exited ${code}: ${banner}`)));
    });
    for (let i = 0; i < 100 && !/password: \S+/.test(banner); i++)
      await new Promise((r) => setTimeout(r, 50));
    const m = /username: (\S+) {3}password: (\S+)/.exec(banner);
    assert.ok(m, banner);
    user = { username: m[1] as string, password: m[2] as string };
  });
  after(async () => {
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
    cleanup(dir);
  });

  it("publishes authorization server metadata with S256-only PKCE, the iss parameter and no offline_access", async () => {
    const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(meta.issuer, base);
    assert.deepEqual(meta.code_challenge_methods_supported, ["S256"]);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.ok(!(meta.scopes_supported as string[]).includes("offline_access"));
    const prm = (await (
      await fetch(`${base}/.well-known/oauth-protected-resource/mcp/demo`)
    ).json()) as Record<string, unknown>;
    assert.deepEqual(prm.authorization_servers, [base]);
  });

  it("lets an SDK v1 client with only the server URL connect through OAuth, no manual registration", async () => {
    const provider = new SdkClientState("Portcullis e2e client");
    const url = new URL(`${base}/mcp/demo`);
    const first = new StreamableHTTPClientTransport(url, { authProvider: provider });
    await assert.rejects(new Client({ name: "e2e", version: "1" }).connect(first), UnauthorizedError);
    assert.ok(provider.info?.client_id, "the client registered itself");
    assert.ok(provider.authorizationUrl, "and was sent to sign in");
    assert.equal(provider.authorizationUrl.searchParams.get("resource"), url.href);
    const callback = await authorize(provider.authorizationUrl, { user, stopAt: REDIRECT });
    assert.equal(callback.searchParams.get("iss"), base, "RFC 9207 iss in the authorization response");
    await first.finishAuth(callback.searchParams.get("code") as string);
    assert.ok(provider.saved?.access_token);

    const client = new Client({ name: "e2e", version: "1" });
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    await client.connect(transport);
    try {
      // As MCP clients do, list first: the gateway learns each tool's risk tier from the list
      // (a tool it has never seen counts as destructive under the default policy pack).
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === "echo"));
      const result = await client.callTool({ name: "echo", arguments: { text: "signed in" } });
      assert.match(JSON.stringify(result), /signed in/);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("refuses the built-in server's token at an endpoint it was not issued for", async () => {
    const provider = new SdkClientState("Portcullis e2e client");
    const url = new URL(`${base}/mcp/demo`);
    const t = new StreamableHTTPClientTransport(url, { authProvider: provider });
    await assert.rejects(new Client({ name: "e2e", version: "1" }).connect(t), UnauthorizedError);
    const callback = await authorize(provider.authorizationUrl as URL, { user, stopAt: REDIRECT });
    await t.finishAuth(callback.searchParams.get("code") as string);
    const token = provider.saved?.access_token as string;
    const other = await fetch(`${base}/mcp/nope`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    assert.equal(other.status, 401);
  });
});
