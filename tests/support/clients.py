"""Clients of a running LiteLLM gateway (a test's own or the whole stack's), and its metrics."""

from __future__ import annotations

from typing import Any

import httpx
import openai


def parse_metric(text: str, name: str, **labels: str) -> float | None:
    """The sum of the samples of ``name`` whose labels include ``labels`` (None: no sample)."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric_name, _, label_text = head.partition("{")
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
            found = True
    return total if found else None


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

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of ``name`` on /metrics (summed over matching samples), or None when absent."""
        return parse_metric(self.gateway_metrics(), name, **labels)
