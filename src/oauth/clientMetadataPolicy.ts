/**
 * Policy on the metadata of clients that register themselves (RFC 7591 §2) or are described
 * by a Client ID Metadata Document: redirect URIs checked by ./registration.ts, a bounded
 * number of them (RFC 7591 §5), and client_credentials refused (MCP extension
 * "oauth-client-credentials": those clients are created by the operator only).
 */
import { isMachineClientId } from "./machineClients.js";
import type { OidcProviderModule } from "./oidcProvider.js";
import { type RegistrationLimits, redirectUriProblem } from "./registration.js";

export interface ClientMetadataSettings {
  environment: string;
  registration: RegistrationLimits;
  errors: OidcProviderModule["errors"];
  /** The admin console, registered statically: its redirect URI is on the issuer's own origin. */
  isFirstParty: (clientId: unknown) => boolean;
}

/** oidc-provider's `extraClientMetadata`. */
export function clientMetadataPolicy(settings: ClientMetadataSettings): Record<string, unknown> {
  const { environment, errors, isFirstParty } = settings;
  const registrationLimits = settings.registration;
  return {
    // RFC 7591 §2 software statement fields; the validator runs once per registration or
    // metadata document (oidc-provider calls it only for extra properties), so the
    // redirect URI policy is enforced from here for DCR and CIMD clients alike.
    properties: ["software_id", "software_version"],
    validator(_ctx: unknown, key: string, value: unknown, metadata: Record<string, unknown>) {
      if (value !== undefined && typeof value !== "string") {
        throw new errors.InvalidClientMetadata(`${key} must be a string`);
      }
      if (key !== "software_id") return;
      // The console's redirect URI is on the issuer's own origin (FirstPartyClient above).
      if (isFirstParty(metadata.client_id)) return;
      // MCP "oauth-client-credentials": clients for it are created by the operator, never self-registered.
      const grantTypes = metadata.grant_types;
      if (
        Array.isArray(grantTypes) &&
        grantTypes.includes("client_credentials") &&
        !isMachineClientId(metadata.client_id)
      ) {
        throw new errors.InvalidClientMetadata(
          "client_credentials is only for clients created by the operator (portcullis clients create)",
        );
      }
      const uris = metadata.redirect_uris;
      if (!Array.isArray(uris)) return;
      if (uris.length > registrationLimits.maxRedirectUris) {
        throw new errors.InvalidClientMetadata(
          `at most ${registrationLimits.maxRedirectUris} redirect_uris may be registered`,
        );
      }
      const applicationType = String(metadata.application_type ?? "web");
      for (const uri of uris) {
        const problem = redirectUriProblem(String(uri), applicationType, environment);
        if (problem !== null) throw new errors.InvalidRedirectUri(`redirect_uri ${String(uri)} ${problem}`);
      }
    },
  };
}
