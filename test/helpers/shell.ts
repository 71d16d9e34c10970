/**
 * Running commands as a user types them: `sh -c` in a working directory, with `portcullis`
 * and `npx portcullis` resolved to this checkout's built CLI through shims on PATH (any other
 * `npx` call goes to the real npx).
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI } from "./gateway.js";

export interface ShellResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A directory holding `portcullis` and `npx` shims; put it first on PATH. */
export function portcullisShims(dir: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const node = JSON.stringify(process.execPath);
  const cli = JSON.stringify(CLI);
  writeFileSync(join(bin, "portcullis"), `#!/bin/sh\nexec ${node} ${cli} "$@"\n`);
  writeFileSync(
    join(bin, "npx"),
    `#!/bin/sh\nif [ "$1" = portcullis ]; then shift; exec ${node} ${cli} "$@"; fi\nPATH="${process.env.PATH ?? ""}" exec npx "$@"\n`,
  );
  for (const f of ["portcullis", "npx"]) chmodSync(join(bin, f), 0o755);
  return bin;
}

/** Runs `script` with `sh -e -c` in `cwd`, the shims first on PATH. */
export function runShell(
  script: string,
  opts: { cwd: string; bin: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<ShellResult> {
  return new Promise((resolve) => {
    execFile(
      "sh",
      ["-e", "-c", script],
      {
        cwd: opts.cwd,
        env: { ...process.env, ...opts.env, PATH: `${opts.bin}:${process.env.PATH ?? ""}` },
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
