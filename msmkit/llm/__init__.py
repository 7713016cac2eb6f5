"""One async interface to every LLM the pipeline uses."""

from msmkit.llm.types import ChatMessage, LLMConfig, LLMRequest, LLMResponse, StopReason, Usage

__all__ = ["ChatMessage", "LLMConfig", "LLMRequest", "LLMResponse", "StopReason", "Usage"]
