/**
 * Questions on the terminal for interactive commands (`portcullis init`): asked on stderr (stdout
 * stays for the result), answered on stdin, line by line. Works on a TTY and with piped
 * answers alike; answers that arrive before their question are kept, not lost.
 */
import { createInterface, type Interface } from "node:readline/promises";
import { ConfigError } from "../config/load.js";

export class Prompter {
  private readonly rl: Interface;
  private readonly lines: AsyncIterator<string>;

  constructor(input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stderr) {
    this.rl = createInterface({ input, output });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  /** The answer, trimmed; `fallback` for an empty one. Standard input closing is a usage error. */
  async ask(question: string, fallback = ""): Promise<string> {
    this.rl.setPrompt(fallback === "" ? `${question}: ` : `${question} [${fallback}]: `);
    this.rl.prompt();
    const next = await this.lines.next();
    if (next.done)
      throw new ConfigError("standard input closed before every question was answered (use --yes)");
    const answer = next.value.trim();
    return answer === "" ? fallback : answer;
  }

  /** Yes or no; `fallback` for an empty answer. */
  async confirm(question: string, fallback: boolean): Promise<boolean> {
    for (;;) {
      const answer = (await this.ask(`${question} (${fallback ? "Y/n" : "y/N"})`)).toLowerCase();
      if (answer === "") return fallback;
      if (["y", "yes"].includes(answer)) return true;
      if (["n", "no"].includes(answer)) return false;
    }
  }

  close(): void {
    this.rl.close();
  }
}
