"""LiteLLM glue: the only module of the package that imports LiteLLM.

Gateway (proxy) users enable the router with::

    litellm_settings:
      callbacks: [stratum_litellm.proxy_handler]

``proxy_handler`` is created when the gateway loads its callbacks, which is after LiteLLM
has read the config file, so the router reads its settings (``callback_settings.stratum``)
from that same file, validates them and refuses to start on a bad one.

SDK users, whose ``litellm.Router`` never calls proxy hooks, use :class:`StratumRouter`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import uuid
from typing import Any, Callable, Mapping

import litellm
from litellm.caching.redis_cache import RedisCache
from litellm.integrations.custom_logger import CustomLogger
from litellm.router import Router
from litellm.types.router import PreRoutingHookResponse

from ..config import SettingsError, StratumSettings, load_settings, read_document, resolve_settings
from ..learning.sampler import Reply, is_sample
from ..config.model_list import model_list_of
from ..signals.shared import Register, redis_source, shares_state
from ..routing.rules import RequestMeta
from . import metrics
from .engine import RouterEngine
from .record import METADATA_KEY
from .stop import Stop

logger = logging.getLogger("stratum_litellm")

# Chat-shaped calls carry messages (or a prompt) the scorer can read.
_ROUTED_CALL_TYPES = frozenset(
    {"completion", "acompletion", "text_completion", "atext_completion", "anthropic_messages", "aanthropic_messages",
     "responses", "aresponses"}
)


def _gateway_config_path() -> str | None:
    # Read, never imported: the proxy module is already loaded when the gateway loads us.
    proxy = sys.modules.get("litellm.proxy.proxy_server")
    path = getattr(proxy, "user_config_file_path", None) if proxy is not None else None
    return path if isinstance(path, str) else None


def _gateway_document(path: str | None) -> Any:
    """The gateway's config file as parsed YAML (None when it cannot be read)."""
    if path is None or not os.path.isfile(path):
        return None
    try:
        return read_document(path)
    except SettingsError:
        return None  # LiteLLM read it; an unreadable copy is reported when the settings load it


def _gateway_model_list(document: Any) -> list[Any] | None:
    """The deployments the gateway serves: its config file's ``model_list`` (read as the
    settings are), else the proxy's own list when it was loaded from elsewhere."""
    models = model_list_of(document)
    if models is not None:
        return models
    proxy = sys.modules.get("litellm.proxy.proxy_server")
    models = getattr(proxy, "llm_model_list", None) if proxy is not None else None
    return models if isinstance(models, list) else None


def _gateway_redis() -> Register | None:
    """The Redis LiteLLM itself uses, through its own client (namespace and circuit
    breaker included). Looked up on every tick until found: with only
    ``router_settings.redis_host`` it appears once the proxy has built its router."""
    global _env_redis
    proxy = sys.modules.get("litellm.proxy.proxy_server")
    router = getattr(proxy, "llm_router", None)
    candidates = (getattr(getattr(router, "cache", None), "redis_cache", None),
                  getattr(proxy, "redis_usage_cache", None),
                  getattr(getattr(litellm, "cache", None), "cache", None))
    for cache in candidates:
        if isinstance(cache, RedisCache):
            return cache.async_register_script
    if os.environ.get("REDIS_HOST") or os.environ.get("REDIS_URL"):
        if _env_redis is None:  # LiteLLM's client reads the same REDIS_* variables
            _env_redis = RedisCache()
        return _env_redis.async_register_script
    return None


_env_redis: RedisCache | None = None


def _router_redis(router: Router) -> Callable[[], Register | None]:
    """An SDK Router's Redis (``redis_host``/``redis_url`` given to it), if it has one."""

    def connect() -> Register | None:
        cache = getattr(getattr(router, "cache", None), "redis_cache", None)
        return cache.async_register_script if isinstance(cache, RedisCache) else None

    return connect


def engine_from_gateway() -> RouterEngine:
    """A started router engine with the settings the gateway's config names."""
    mapping = (getattr(litellm, "callback_settings", None) or {}).get("stratum")
    path = _gateway_config_path()
    document = _gateway_document(path)  # read once: settings, model_list and Redis
    settings, source = resolve_settings(path, mapping, document=document)
    logger.info("stratum router: settings from %s; routed model %s", source, settings.routed_model)
    redis = shares_state(settings, source, redis_source(document, os.environ), _workers(), "the gateway config")
    engine = RouterEngine.polling(settings, source, _gateway_model_list(document),
                                  shared=_gateway_redis if redis else None)
    engine.learning.attach(_proxy_complete)
    metrics.publish(engine)  # its gauges on the gateway's /metrics
    if os.path.isfile(source):
        engine.watch(source)
    return engine


async def _proxy_complete(group: str, messages: list[Any], metadata: dict[str, Any], params: dict[str, Any]) -> Reply:
    """One call to a model group through the gateway's own router, for a judged sample:
    no proxy hook runs (the router is not re-entered), no retry, no fallback."""
    proxy = sys.modules.get("litellm.proxy.proxy_server")
    router = getattr(proxy, "llm_router", None)
    if router is None:
        raise RuntimeError("the gateway's router is not up yet")
    return _reply(await router.acompletion(model=group, messages=messages, metadata=metadata, stream=False,
                                           num_retries=0, fallbacks=[], disable_fallbacks=True, **params))


def _reply(response: Any) -> Reply:
    hidden = getattr(response, "_hidden_params", None) or {}
    headers = hidden.get("additional_headers") or {}
    cost = hidden.get("response_cost")
    group = headers.get("x-litellm-model-group")
    return Reply(_answer(response) or "", float(cost) if isinstance(cost, (int, float)) else 0.0,
                 group if isinstance(group, str) else None)


def _answer(response: Any) -> str | None:
    """The text of a chat completion's answer (None: not one, or a tool call)."""
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return None
    if getattr(message, "tool_calls", None) or getattr(message, "function_call", None):
        return None
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else None


def _graceful_timeout() -> float:
    """How long the gateway lets requests finish after SIGTERM (LiteLLM's
    ``GRACEFUL_SHUTDOWN_TIMEOUT``, 30 s unless set)."""
    try:
        from litellm.proxy.shutdown.graceful_shutdown_manager import GracefulShutdownManager
    except ImportError:  # a LiteLLM without it: uvicorn's own default (no limit), bounded here
        return 30.0
    return float(GracefulShutdownManager.get_timeout())


def _workers() -> int:
    try:
        return int(os.environ.get("NUM_WORKERS", "1"))  # set by ``litellm --num_workers``
    except ValueError:
        return 1


def _request_meta(user_api_key_dict: Any, data: Mapping[str, Any]) -> RequestMeta:
    metadata = data.get("metadata")
    server_request = data.get("proxy_server_request")
    headers = server_request.get("headers") if isinstance(server_request, Mapping) else None
    return RequestMeta(
        user_id=getattr(user_api_key_dict, "user_id", None),
        team_id=getattr(user_api_key_dict, "team_id", None),
        key_alias=getattr(user_api_key_dict, "key_alias", None),
        end_user=data.get("user") if isinstance(data.get("user"), str) else None,
        key=_key_id(user_api_key_dict),
        metadata=metadata if isinstance(metadata, Mapping) else {},
        headers={str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {},
    )


def _key_id(user_api_key_dict: Any) -> str | None:
    # LiteLLM's hashed token when it has one; a master key has none, so hash it here: the
    # key itself is never kept.
    token = getattr(user_api_key_dict, "token", None)
    if isinstance(token, str) and token:
        return token
    key = getattr(user_api_key_dict, "api_key", None)
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest() if isinstance(key, str) and key else None


class StratumProxyHandler(CustomLogger):
    """The gateway callback: rewrites the model group before LiteLLM forwards a request,
    and feeds each call's latency back. Each hook is defined on this class itself: the
    proxy skips hooks a callback only inherits."""

    def __init__(self, engine: RouterEngine | None = None) -> None:
        super().__init__()
        self.engine = engine if engine is not None else engine_from_gateway()
        self.stop = Stop(self.engine, _graceful_timeout)
        try:  # the gateway loads its callbacks on its event loop: tick from start-up on
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet (the SDK): the first request starts the tick
        if self.engine.signals.shared is not None:
            self.engine.signals.shared.start()
        if engine is None:  # the gateway's own: its server's stop signal stops the router too
            self.stop.install()

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> dict:
        try:
            self.engine.start()  # a no-op after the first request
            if call_type in _ROUTED_CALL_TYPES:
                await self.engine.route_shared(data, _request_meta(user_api_key_dict, data))
        except Exception as exc:  # never a 500 because of the router
            if data.get("model") == self.engine.settings.routed_model:
                self.engine.fail_open(data, exc, "pre_call_hook")
            else:
                self.engine.record_error("pre_call_hook", exc)
        return data

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.engine.observe(kwargs, start_time, end_time, ok=True, answer=_answer(response_obj))

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.engine.observe(kwargs, start_time, end_time, ok=False)

    async def async_post_call_response_headers_hook(
        self,
        data: dict,
        user_api_key_dict: Any,
        response: object,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, object] | None = None,
    ) -> dict[str, str] | None:
        try:
            if not self.engine.settings.response_headers:
                return None
            metadata = data.get("metadata")
            record = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
            if not isinstance(record, Mapping):
                return None
            headers = {"x-stratum-tier": str(record["tier"]), "x-stratum-reason": str(record["reason"])}
            if record.get("score") is not None:
                headers["x-stratum-score"] = f"{record['score']:.4f}"
            if record.get("mode") == "shadow":  # reported only: another deployment served it
                headers["x-stratum-mode"] = "shadow"
            return headers
        except Exception as exc:
            self.engine.record_error("response_headers", exc)
            return None


class StratumRouter(Router):
    """A ``litellm.Router`` that routes its alias the way the gateway plugin does.

    ``Router`` does not call proxy hooks, so the decision is made in its pre-routing
    hook; the latency feedback comes from a callback this router adds to
    ``litellm.callbacks``. ``stratum_settings`` is a settings object, a path to a YAML file
    (a LiteLLM config with ``callback_settings.stratum`` or a standalone file), or None for
    the defaults.
    """

    def __init__(self, *args: Any, stratum_settings: StratumSettings | str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(stratum_settings, str):
            settings, source = load_settings(stratum_settings), stratum_settings
        elif stratum_settings is None:
            settings, source = resolve_settings()
        else:
            settings, source = stratum_settings, "StratumRouter(stratum_settings=...)"
        model_list = kwargs.get("model_list", args[0] if args else None)
        connect = _router_redis(self)
        redis = "the Router's redis_host / redis_url" if connect() is not None else None
        shared = shares_state(settings, source, redis, 1, "the Router (redis_host / redis_url)")
        self.stratum = RouterEngine.polling(settings, source, model_list if isinstance(model_list, list) else None,
                                            shared=connect if shared else None)
        self.stratum.learning.attach(self._complete)
        self.stratum.signals.start()
        metrics.publish(self.stratum)  # gauges on prometheus-client's default registry, as in the gateway
        if os.path.isfile(source):
            self.stratum.watch(source)
        self.stratum_callback = StratumProxyHandler(self.stratum)
        litellm.callbacks.append(self.stratum_callback)

    async def async_pre_routing_hook(
        self,
        model: str,
        request_kwargs: dict,
        messages: list[dict[str, Any]] | None = None,
        input: str | list | None = None,
        specific_deployment: bool | None = False,
    ) -> PreRoutingHookResponse | None:
        settings = self.stratum.settings
        if (model != settings.routed_model and settings.tier_of_group(model) is None) \
                or is_sample(request_kwargs.get("metadata")):
            return await super().async_pre_routing_hook(model, request_kwargs, messages, input, specific_deployment)
        # The SDK call id is made later; pick it now so the callbacks can close the loop.
        call_id = request_kwargs.setdefault("litellm_call_id", str(uuid.uuid4()))
        data: dict[str, Any] = {"model": model, "messages": messages, "litellm_call_id": call_id}
        for key in ("tools", "functions", "tool_choice"):
            if key in request_kwargs:
                data[key] = request_kwargs[key]
        if input is not None and messages is None:
            data["input"] = input
        metadata = request_kwargs.get("metadata")
        data["metadata"] = metadata if isinstance(metadata, dict) else {}
        user = request_kwargs.get("user")
        self.stratum.start()
        decision = await self.stratum.route_shared(data, RequestMeta(end_user=user if isinstance(user, str) else None))
        if decision is None:
            return None
        request_kwargs["metadata"] = data["metadata"]
        return PreRoutingHookResponse(model=data["model"], messages=messages)  # kept as asked in shadow

    async def _complete(self, group: str, messages: list[Any], metadata: dict[str, Any],
                        params: dict[str, Any]) -> Reply:
        """A judged sample's call through this router (its pre-routing hook lets it pass)."""
        return _reply(await Router.acompletion(self, model=group, messages=messages, metadata=metadata, stream=False,
                                               num_retries=0, fallbacks=[], disable_fallbacks=True, **params))

    def close(self) -> None:
        if self.stratum_callback in litellm.callbacks:
            litellm.callbacks.remove(self.stratum_callback)
        self.stratum.close()


_proxy_handler: StratumProxyHandler | None = None


def __getattr__(name: str) -> Any:
    # Created on first access, which for the gateway is when it loads its callbacks:
    # by then the config file has been read, and a bad one stops the start here.
    global _proxy_handler
    if name == "proxy_handler":
        if _proxy_handler is None:
            _proxy_handler = StratumProxyHandler()
        return _proxy_handler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
