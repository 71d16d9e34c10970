/** pino JSON logs. Credentials never reach a log line: authorization headers are redacted. */
import { type Logger, pino } from "pino";

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: "portcullis" },
      redact: {
        paths: ["req.headers.authorization", "headers.authorization", "key", "secret"],
        censor: "[redacted]",
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
