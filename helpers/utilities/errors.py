"""Runs in: hub, zygote, spoke, vanillagpt.

The project's exception hierarchy: one root, a few families, messages that name the fix.

Denials (a refused permission, a blocked URL) are results, not exceptions; these
classes are for things that went wrong. The CLI prints ``str(error)`` as one line.
"""


class SecGPTError(Exception):
    """Root of every error SecGPT raises on purpose."""


class ConfigError(SecGPTError):
    """A configuration file or setting is missing or malformed."""


class ProtocolError(SecGPTError):
    """A peer broke the hub<->spoke or hub<->zygote protocol."""


class SandboxError(SecGPTError):
    """A sandbox layer could not be built or applied."""


class SpokeError(SecGPTError):
    """A spoke crashed, hung, or broke the rules; the hub stopped it."""


class PermissionStoreError(SecGPTError):
    """data/perm.json cannot be read or written safely."""


class LLMError(SecGPTError):
    """The LLM call failed (after retries); the session goes on. ``category`` is the broker's
    one word for why (``timeout``, ``rate_limited``, ``provider_error``, ...)."""

    def __init__(self, message: str, category: str = "unexpected_error") -> None:
        super().__init__(message)
        self.category = category


class MemoryUnavailable(SecGPTError):
    """Redis cannot be reached or started."""
