/** Local ports for test servers that must listen on a port known in advance. */
import { createServer } from "node:net";

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", resolve);
  });
  const address = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  if (address === null || typeof address !== "object") throw new Error("no port");
  return address.port;
}
