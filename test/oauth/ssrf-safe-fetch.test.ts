/**
 * Server-side request forgery through Client ID Metadata Documents (MCP security best
 * practices, "SSRF"): private, loopback, link-local and IPv4-mapped IPv6 targets are refused,
 * a host whose DNS answer contains any such address is refused (rebinding), the connection
 * goes to the checked address, bodies are capped, and a document that claims another
 * client_id than its URL is refused.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { forbiddenAddressReason } from "../../src/oauth/publicAddress.js";
import { fetchClientIdMetadataDocument, SafeFetchError, safeFetch } from "../../src/oauth/safeFetch.js";

const REFUSED = [
  "127.0.0.1",
  "127.1.2.3",
  "10.0.0.1",
  "172.16.5.4",
  "192.168.1.1",
  "169.254.169.254",
  "100.64.0.1",
  "0.0.0.0",
  "224.0.0.1",
  "::1",
  "::",
  "fe80::1",
  "fc00::1",
  "fd12:3456::1",
  "::ffff:127.0.0.1",
  "::ffff:7f00:1",
  "::ffff:169.254.169.254",
  "::ffff:10.0.0.1",
  "64:ff9b::a9fe:a9fe",
];

describe("SSRF-safe fetch", () => {
  for (const address of REFUSED) {
    it(`refuses to connect to ${address} outside dev`, () => {
      assert.notEqual(forbiddenAddressReason(address, "prod"), null);
    });
  }

  it("allows public addresses", () => {
    assert.equal(forbiddenAddressReason("93.184.216.34", "prod"), null);
    assert.equal(forbiddenAddressReason("2606:4700:4700::1111", "prod"), null);
  });

  // Every IPv6 form that reaches an IPv4 host through a translator, a relay or the dual stack.
  const EMBEDDINGS: Array<[string, (v4: string, hex: string) => string]> = [
    ["IPv4-mapped", (v4) => `::ffff:${v4}`],
    ["IPv4-mapped, hex", (_v4, hex) => `::ffff:${hex}`],
    ["IPv4-translated (SIIT)", (v4) => `::ffff:0:${v4}`],
    ["IPv4-translated, hex", (_v4, hex) => `::ffff:0:${hex}`],
    ["NAT64 well-known prefix", (v4) => `64:ff9b::${v4}`],
    ["6to4", (_v4, hex) => `2002:${hex}::1`],
    ["IPv4-compatible", (v4) => `::${v4}`],
  ];
  const hex = (v4: string) => {
    const [a = 0, b = 0, c = 0, d = 0] = v4.split(".").map(Number);
    return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  };
  for (const [form, embed] of EMBEDDINGS) {
    it(`refuses loopback, metadata and private IPv4 smuggled as ${form} IPv6`, () => {
      for (const inner of ["127.0.0.1", "169.254.169.254", "10.0.0.1", "192.168.1.1", "100.64.0.1"]) {
        const address = embed(inner, hex(inner));
        assert.notEqual(forbiddenAddressReason(address, "prod"), null, address);
      }
      // Link-local (cloud metadata) stays refused in dev too.
      assert.notEqual(forbiddenAddressReason(embed("169.254.169.254", "a9fe:a9fe"), "dev"), null);
    });
    it(`allows a public IPv4 address as ${form} IPv6`, () => {
      const address = embed("93.184.216.34", hex("93.184.216.34"));
      assert.equal(forbiddenAddressReason(address, "prod"), null, address);
    });
  }

  it("refuses IPv6 forms whose IPv4 part cannot be located (local-use NAT64, Teredo) and unlisted ranges", () => {
    for (const address of [
      "64:ff9b:1::7f00:1",
      "2001:0:4136:e378:8000:63bf:3fff:fdd2",
      "2001:db8::1",
      "ff02::1",
    ]) {
      assert.notEqual(forbiddenAddressReason(address, "prod"), null, address);
    }
    assert.equal(forbiddenAddressReason("127.1", "prod"), "not an IP address", "classful forms are not IPs");
  });

  it("allows loopback in dev but never link-local (cloud metadata)", () => {
    assert.equal(forbiddenAddressReason("127.0.0.1", "dev"), null);
    assert.notEqual(forbiddenAddressReason("169.254.169.254", "dev"), null);
    assert.notEqual(forbiddenAddressReason("::ffff:169.254.169.254", "dev"), null);
  });

  it("refuses a host whose DNS answer mixes public and private addresses (DNS rebinding)", async () => {
    await assert.rejects(
      safeFetch("https://rebind.example/client.json", {
        environment: "prod",
        resolve: async () => ["93.184.216.34", "10.0.0.7"],
      }),
      (err: unknown) => err instanceof SafeFetchError && err.code === "forbidden_address",
    );
  });

  it("refuses plain http and credentials in the URL", async () => {
    await assert.rejects(
      safeFetch("http://example.com/client.json", {
        environment: "prod",
        resolve: async () => ["93.184.216.34"],
      }),
      (err: unknown) => err instanceof SafeFetchError && err.code === "forbidden_scheme",
    );
    await assert.rejects(
      safeFetch("https://user:pw@example.com/", { environment: "prod" }),
      (err: unknown) => err instanceof SafeFetchError && err.code === "invalid_url",
    );
  });

  describe("against a local document server", () => {
    let server: Server;
    let base: string;
    const documents = new Map<string, () => string>();
    before(async () => {
      server = createServer((req, res) => {
        const doc = documents.get(req.url ?? "");
        res.writeHead(doc ? 200 : 404, { "content-type": "application/json" });
        res.end(doc ? doc() : "{}");
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("refuses a document whose client_id differs from its URL (client impersonation)", async () => {
      documents.set("/impostor.json", () =>
        JSON.stringify({
          client_id: "https://claude.ai/oauth/client.json",
          redirect_uris: ["https://evil.example/cb"],
        }),
      );
      await assert.rejects(
        fetchClientIdMetadataDocument(`${base}/impostor.json`, { environment: "dev" }),
        /client_id differs/,
      );
    });

    it("accepts a document whose client_id is its URL", async () => {
      documents.set("/good.json", () =>
        JSON.stringify({ client_id: `${base}/good.json`, redirect_uris: ["http://127.0.0.1/cb"] }),
      );
      const meta = await fetchClientIdMetadataDocument(`${base}/good.json`, { environment: "dev" });
      assert.equal(meta.client_id, `${base}/good.json`);
    });

    it("refuses a document declaring a shared secret", async () => {
      documents.set("/secret.json", () =>
        JSON.stringify({ client_id: `${base}/secret.json`, client_secret: "s" }),
      );
      await assert.rejects(
        fetchClientIdMetadataDocument(`${base}/secret.json`, { environment: "dev" }),
        /shared secrets/,
      );
    });

    it("refuses an oversized document (memory exhaustion)", async () => {
      documents.set("/big.json", () =>
        JSON.stringify({ client_id: `${base}/big.json`, pad: "x".repeat(70 * 1024) }),
      );
      await assert.rejects(
        fetchClientIdMetadataDocument(`${base}/big.json`, { environment: "dev" }),
        (err: unknown) => err instanceof SafeFetchError && err.code === "response_too_large",
      );
    });

    it("refuses the same loopback server outside dev", async () => {
      await assert.rejects(
        safeFetch(`${base}/good.json`, { environment: "prod" }),
        (err: unknown) => err instanceof SafeFetchError && err.code === "forbidden_address",
      );
    });

    it("connects to the address it checked, not to a second DNS answer", async () => {
      let calls = 0;
      const port = new URL(base).port;
      documents.set("/pinned.json", () => "{}");
      const res = await safeFetch(`http://pinned.test:${port}/pinned.json`, {
        environment: "dev",
        resolve: async () => {
          calls++;
          return ["127.0.0.1"];
        },
      });
      assert.equal(res.status, 200);
      assert.equal(calls, 1);
    });

    it("times out a server that never answers", async () => {
      documents.set("/slow.json", () => "{}");
      const slow = createServer(() => {});
      await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
      const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`;
      await assert.rejects(
        safeFetch(url, { environment: "dev", timeoutMs: 200 }),
        (err: unknown) => err instanceof SafeFetchError && err.code === "timeout",
      );
      slow.closeAllConnections();
      slow.close();
    });
  });
});
