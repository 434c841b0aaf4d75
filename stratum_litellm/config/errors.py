"""A settings file the router refuses, and each of pydantic's errors told as the key, what
was wrong and what was given."""

from __future__ import annotations

from typing import Any, Mapping

from .settings import StratumSettings

class SettingsError(ValueError):
    """A settings file the router refuses, with every problem spelled out."""


def _is_key(part: Any) -> bool:
    # Where pydantic names the member of a union it tried (``function-after[...,
    # BackendSettings]``), that is not a key of the file.
    return part != "" and not str(part).endswith("BackendSettings]")


def describe(error: Mapping[str, Any], prefix: str) -> str:
    loc = ".".join(str(p) for p in (prefix, *error["loc"]) if _is_key(p))
    message = str(error["msg"]).removeprefix("Value error, ")
    shown = repr(error.get("input"))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown key (check its spelling; see the README's configuration reference)"
    if error["type"] == "missing":
        return f"{loc}: required key is missing"
    if not error["loc"]:  # a check across keys: the message starts with the key it names
        key, sep, rest = message.partition(": ")
        if sep and key.split(".")[0] in StratumSettings.model_fields:
            return f"{loc}.{key}: {rest}"
        return f"{loc}: {message}"
    return f"{loc}: {message} (got {shown})"


