/**
 * The admin console as a browser without script uses it: sign in through the built-in
 * authorization server's pages (console/login → sign-in form → console/callback) with a cookie
 * jar, then GET pages and POST their forms with the page's CSRF token.
 */
import { CookieJar } from "../fixtures/oidc-idp.js";
import { browse, type Credentials, signInAndConsent } from "./browserLogin.js";
import type { RunningGateway } from "./gateway.js";

export interface ConsoleBrowser {
  jar: CookieJar;
  /** The Cookie header the browser sends to the console (to replay it elsewhere). */
  cookie(): string;
  get(path: string): Promise<{ status: number; html: string; location: string | null }>;
  /** POSTs `form` with the CSRF token of the page at `from` (default: `path`'s page). */
  post(
    path: string,
    form?: Record<string, string>,
    from?: string,
  ): Promise<{ status: number; html: string; location: string | null }>;
}

export async function signInToConsole(gw: RunningGateway, user: Credentials): Promise<ConsoleBrowser> {
  const jar = new CookieJar();
  const back = await signInAndConsent(new URL(`${gw.url}/console/login`), {
    user,
    jar,
    stopAt: (url) => url.pathname === "/console/callback",
  });
  const done = await browse(jar, back);
  await done.arrayBuffer();
  if (done.status !== 303) throw new Error(`console sign-in of ${user.username} ended with ${done.status}`);
  const answer = async (res: Response) => ({
    status: res.status,
    html: await res.text(),
    location: res.headers.get("location"),
  });
  const get = async (path: string) => answer(await browse(jar, new URL(path, gw.url)));
  return {
    jar,
    cookie: () => jar.header(new URL("/console", gw.url)),
    get,
    async post(path, form = {}, from) {
      const page = await get(from ?? path);
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)?.[1];
      if (csrf === undefined) throw new Error(`no CSRF token on ${from ?? path} (${page.status})`);
      return answer(await browse(jar, new URL(path, gw.url), { csrf, ...form }));
    },
  };
}
