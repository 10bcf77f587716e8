"""An MCP server exposing the marketplace to agent hosts (agent_mcp/server.py).

It is a client of the marketplace's JSON API over HTTP, authenticated by an API key:
it holds no database, chain or key material of its own (agent_mcp/api.py).
"""
