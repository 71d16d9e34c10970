/**
 * The built-in authorization server's sign-in form, reached by following an authorization
 * request (or the console's /console/login) with a cookie jar, and posted as a browser would —
 * optionally from a chosen loopback source address (127.0.0.0/8 is all loopback on Linux), so
 * a test can play a guesser who changes address between attempts.
 */
import { Agent, fetch as undiciFetch } from "undici";
import { CookieJar } from "../fixtures/oidc-idp.js";
import { browse } from "./browserLogin.js";

export interface SignInAnswer {
  status: number;
  retryAfter: string | null;
  html: string;
}

export interface SignInForm {
  /** Posts the form; `from` is the source address (default: the system's choice). */
  post(username: string, password: string, from?: string): Promise<SignInAnswer>;
  close(): Promise<void>;
}

export async function openSignInForm(start: URL, jar: CookieJar = new CookieJar()): Promise<SignInForm> {
  let url = start;
  let html = "";
  for (let hop = 0; hop < 10; hop++) {
    const res = await browse(jar, url);
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location !== null) {
      await res.arrayBuffer();
      url = new URL(location, url);
      continue;
    }
    html = await res.text();
    break;
  }
  const action = /<form method="post" action="([^"]+\/login)"/.exec(html)?.[1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  if (action === undefined || csrf === undefined)
    throw new Error(`no sign-in form at ${url.href}: ${html.slice(0, 300)}`);
  const target = new URL(action, url);
  const agents = new Map<string, Agent>();
  const agentFor = (from: string) => {
    let agent = agents.get(from);
    if (agent === undefined) {
      agent = new Agent({ localAddress: from });
      agents.set(from, agent);
    }
    return agent;
  };
  return {
    async post(username, password, from) {
      const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
      const cookie = jar.header(target);
      if (cookie !== "") headers.cookie = cookie;
      const res = await undiciFetch(target, {
        method: "POST",
        headers,
        redirect: "manual",
        body: new URLSearchParams({ csrf, username, password }).toString(),
        ...(from === undefined ? {} : { dispatcher: agentFor(from) }),
      });
      return { status: res.status, retryAfter: res.headers.get("retry-after"), html: await res.text() };
    },
    async close() {
      await Promise.all([...agents.values()].map((a) => a.close()));
    },
  };
}
