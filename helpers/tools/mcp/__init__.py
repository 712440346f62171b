"""Runs in: hub, zygote, spoke, vanillagpt.

MCP servers as SecGPT apps: the manifest's link to a server and its pin (``link``), the
client a spoke (or VanillaGPT) runs (``client``), and its HTTP through the hub
(``egress``). Installing one is the hub's job (hub/mcp_apps.py).
"""
