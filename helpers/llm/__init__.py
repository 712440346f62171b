"""The LLM, shared by the hub, spokes and VanillaGPT: one interface (``interface.ChatModel``),
the adapter for LangChain chat models, the offline models, the model factory and its
configuration, the LLM client (counting, error mapping, redaction) and the agent loop."""
