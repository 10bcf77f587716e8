from agent_mcp.server import main

main()
