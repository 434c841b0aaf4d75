"""What the test helpers that start something share: the context-manager shape, gateway clients."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import httpx
import openai

_M = TypeVar("_M", bound="Managed")


class Managed:
    """``with helper:`` starts it, and closes it on exit or when the start fails half-way."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _M) -> _M:
        try:
            self.start()
        except BaseException:
            self.close()  # a half-started process must not outlive a failed start
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class GatewayClients:
    """Clients of a LiteLLM gateway at ``gateway_url`` with ``master_key``."""

    gateway_url: str
    master_key: str

    def client(self, **kw: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.gateway_url}/v1", api_key=self.master_key, max_retries=0, **kw)

    def async_client(self, **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.gateway_url}/v1", api_key=self.master_key, max_retries=0, **kw)

    def gateway_metrics(self) -> str:
        """The gateway's /metrics text (the router's stratum_* metrics among LiteLLM's)."""
        r = httpx.get(f"{self.gateway_url}/metrics/", headers={"Authorization": f"Bearer {self.master_key}"},
                      timeout=10, follow_redirects=True)
        r.raise_for_status()
        return r.text
