/**
 * The upstream's own record of the tools/call requests it ran: the `--calls <file>` JSON Lines
 * log of test/fixtures/mutable-tool-server.ts. A refusal test reads it to prove the refused
 * call never reached the upstream, and a positive control in the same setup proves the log
 * does record an allowed one.
 */
import { existsSync, readFileSync } from "node:fs";

export interface UpstreamCall {
  name: string;
  arguments: Record<string, unknown>;
  pid: number;
  notification?: boolean;
  /** With `--audit-db`: committed allow records of a tools/call to this tool when it arrived. */
  auditedBefore?: number;
}

export class UpstreamCallLog {
  private seen = 0;
  constructor(readonly file: string) {}

  /** Every call logged so far. */
  all(): UpstreamCall[] {
    if (!existsSync(this.file)) return [];
    return readFileSync(this.file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as UpstreamCall);
  }

  /** Calls logged since the previous `fresh()`. */
  fresh(): UpstreamCall[] {
    const all = this.all();
    const out = all.slice(this.seen);
    this.seen = all.length;
    return out;
  }
}
