/** Leaf pieces of the configuration schema (./schema.ts) that its parts share. */
import { z } from "zod";

/** A secret is never written inline: it is read from an environment variable or a file. */
export const SecretRef = z.union([
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
]);
export type SecretRef = z.infer<typeof SecretRef>;

/** An OAuth scope token (RFC 6749 §3.3). */
export const ScopeName = z
  .string()
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "an OAuth scope token (RFC 6749 §3.3)");
