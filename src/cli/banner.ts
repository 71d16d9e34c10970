/** The start-up message: endpoints, the first-run key (once) and ready-to-paste client configuration. */

export function welcomeBanner(
  baseUrl: string,
  servers: string[],
  environment: string,
  key: string | null,
  user: { username: string; password: string } | null = null,
): string {
  const first = servers[0] ?? "demo";
  const url = `${baseUrl}/mcp/${first}`;
  const shownKey = key ?? "<your API key>";
  const lines = [
    "",
    `Portcullis is running (environment: ${environment})`,
    ...servers.map((s) => `  MCP endpoint  ${baseUrl}/mcp/${s}`),
    `  health        ${baseUrl}/healthz   metrics ${baseUrl}/metrics`,
    "",
  ];
  if (key) {
    lines.push(
      "A development API key was created for this data directory. It is shown ONCE; copy it now:",
      "",
      `  ${key}`,
      "",
      "Manage keys with: portcullis keys list | create | revoke | rotate",
      ...(user
        ? [
            "",
            "OAuth is on: MCP clients that support it need only the endpoint URL and sign in as",
            `  username: ${user.username}   password: ${user.password}   (shown once; portcullis users add|list|remove)`,
          ]
        : []),
    );
  } else {
    lines.push("Create a key with: portcullis keys create --name my-agent --json");
  }
  const cursor = { mcpServers: { [first]: { url, headers: { Authorization: `Bearer ${shownKey}` } } } };
  const vscode = {
    inputs: [
      { type: "promptString", id: "portcullis-key", description: "Portcullis API key", password: true },
    ],
    servers: {
      [first]: { type: "http", url, headers: { Authorization: `Bearer $\{input:portcullis-key}` } },
    },
  };
  const desktop = {
    mcpServers: {
      [first]: {
        command: "npx",
        args: ["-y", "mcp-remote", url, "--header", `Authorization:Bearer $\{PORTCULLIS_KEY}`],
        env: { PORTCULLIS_KEY: shownKey },
      },
    },
  };
  lines.push(
    "",
    "Try it:",
    `  curl -s ${url} -H 'Authorization: Bearer ${shownKey}' -H 'Content-Type: application/json' \\`,
    `    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/list' \\`,
    `    -d '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}'`,
    "",
    "Claude Code:",
    `  claude mcp add --transport http ${first} ${url} --header "Authorization: Bearer ${shownKey}"`,
    "",
    "Cursor (~/.cursor/mcp.json):",
    indent(JSON.stringify(cursor, null, 2)),
    "",
    "VS Code (.vscode/mcp.json; prompts for the key instead of storing it):",
    indent(JSON.stringify(vscode, null, 2)),
    "",
    "Claude Desktop (claude_desktop_config.json, via mcp-remote):",
    indent(JSON.stringify(desktop, null, 2)),
    "",
  );
  return `${lines.join("\n")}\n`;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
