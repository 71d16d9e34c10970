/**
 * User login federated to an upstream OpenID Connect provider (OpenID Connect Core 1.0
 * §3.1, authorization code flow with PKCE per RFC 7636 and RFC 9207 `iss` checks), found by
 * its discovery URL (Okta, Entra ID, Keycloak, Google, Auth0). The upstream needs nothing
 * MCP-specific: Portcullis is the MCP-compliant authorization server in front of it.
 * Claims are mapped to a user id, email and groups.
 */
import * as oauth from "oauth4webapi";

export interface FederationConfig {
  /** Issuer identifier; its `/.well-known/openid-configuration` is fetched. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Where the upstream sends the user back (the gateway's callback URL). */
  redirectUri: string;
  scopes: readonly string[];
  /** Claim names holding the user id, email and groups. */
  claims: { userId: string; email: string; groups: string };
  /** Plain-http issuers (a dev IdP on loopback) are accepted only when true. */
  allowInsecure: boolean;
}

export interface FederatedIdentity {
  /** Stable id: the mapped user-id claim, qualified by the issuer. */
  id: string;
  subject: string;
  email: string | null;
  groups: string[];
  issuer: string;
}

/** What must be kept (server side, bound to the login attempt) between begin and complete. */
export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
}

export class FederationError extends Error {
  override name = "FederationError";
}

export class UpstreamLogin {
  private constructor(
    private readonly config: FederationConfig,
    private readonly as: oauth.AuthorizationServer,
  ) {}

  static async discover(config: FederationConfig): Promise<UpstreamLogin> {
    const issuer = new URL(config.issuer);
    const options = config.allowInsecure ? { [oauth.allowInsecureRequests]: true } : {};
    try {
      const response = await oauth.discoveryRequest(issuer, { algorithm: "oidc", ...options });
      return new UpstreamLogin(config, await oauth.processDiscoveryResponse(issuer, response));
    } catch (err) {
      throw new FederationError(
        `cannot discover the upstream identity provider ${config.issuer}: ${(err as Error).message}`,
      );
    }
  }

  /** The upstream's issuer identifier, as its discovery document states it. */
  get issuer(): string {
    return this.as.issuer;
  }

  private get client(): oauth.Client {
    return { client_id: this.config.clientId };
  }

  private get requestOptions(): { [oauth.allowInsecureRequests]?: boolean } {
    return this.config.allowInsecure ? { [oauth.allowInsecureRequests]: true } : {};
  }

  /** Builds the upstream authorization URL; keep the PendingLogin for complete(). */
  async begin(): Promise<{ url: URL; pending: PendingLogin }> {
    const endpoint = this.as.authorization_endpoint;
    if (!endpoint) throw new FederationError("the upstream provider has no authorization_endpoint");
    const pending: PendingLogin = {
      state: oauth.generateRandomState(),
      nonce: oauth.generateRandomNonce(),
      codeVerifier: oauth.generateRandomCodeVerifier(),
    };
    const url = new URL(endpoint);
    url.searchParams.set("client_id", this.config.clientId);
    url.searchParams.set("redirect_uri", this.config.redirectUri);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("scope", this.config.scopes.join(" "));
    url.searchParams.set("state", pending.state);
    url.searchParams.set("nonce", pending.nonce);
    url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(pending.codeVerifier));
    url.searchParams.set("code_challenge_method", "S256");
    return { url, pending };
  }

  /** Validates the callback (state, iss), redeems the code and maps the ID token's claims. */
  async complete(callback: URL, pending: PendingLogin): Promise<FederatedIdentity> {
    const auth = oauth.ClientSecretBasic(this.config.clientSecret);
    let claims: oauth.IDToken;
    try {
      const params = oauth.validateAuthResponse(this.as, this.client, callback, pending.state);
      const response = await oauth.authorizationCodeGrantRequest(
        this.as,
        this.client,
        auth,
        params,
        this.config.redirectUri,
        pending.codeVerifier,
        this.requestOptions,
      );
      const result = await oauth.processAuthorizationCodeResponse(this.as, this.client, response, {
        expectedNonce: pending.nonce,
        requireIdToken: true,
      });
      claims = oauth.getValidatedIdTokenClaims(result) as oauth.IDToken;
    } catch (err) {
      throw new FederationError(`upstream login failed: ${(err as Error).message}`);
    }
    const record = claims as unknown as Record<string, unknown>;
    const subject = record[this.config.claims.userId];
    if (typeof subject !== "string" || subject === "") {
      throw new FederationError(`the upstream ID token has no '${this.config.claims.userId}' claim`);
    }
    const email = record[this.config.claims.email];
    const groups = record[this.config.claims.groups];
    return {
      id: `${this.as.issuer}#${subject}`,
      subject,
      email: typeof email === "string" ? email : null,
      groups: Array.isArray(groups) ? groups.map(String) : [],
      issuer: this.as.issuer,
    };
  }
}
