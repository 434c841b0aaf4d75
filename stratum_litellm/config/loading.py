"""Loading the settings: from the file named by ``STRATUM_CONFIG``, the gateway's own config
(``callback_settings.stratum``), a mapping the host parsed already, or the defaults. Each
file is read once per load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from .errors import SettingsError, describe
from .settings import StratumSettings

#: Where the router's settings sit inside a LiteLLM config file.
SECTION_PATH: tuple[str, str] = ("callback_settings", "stratum")
#: Environment variable naming a settings file that overrides the gateway config.
CONFIG_ENV = "STRATUM_CONFIG"


def parse_settings(raw: Any, source: str = "<settings>", prefix: str = "stratum") -> StratumSettings:
    """Validate a mapping into settings, or raise :class:`SettingsError` naming each bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{source}: {prefix}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return StratumSettings.model_validate(dict(raw))
    except ValidationError as exc:
        # A mapping given for `backend: BackendSettings | "off"` also fails the "off" member.
        errors = [e for e in exc.errors() if not (e["loc"] and str(e["loc"][-1]).startswith("literal["))]
        problems = "\n  ".join(describe(e, prefix) for e in errors or exc.errors())
        raise SettingsError(f"invalid stratum settings in {source}:\n  {problems}") from None


def extract_section(document: Any) -> tuple[Any, str]:
    """The stratum mapping of a YAML document and its dotted location.

    A LiteLLM config keeps it under ``callback_settings.stratum``; a standalone file may
    hold it under a top-level ``stratum`` key or be the mapping itself.
    """
    if not isinstance(document, Mapping):
        return document, "(top level)"
    callback_settings = document.get(SECTION_PATH[0])
    if isinstance(callback_settings, Mapping) and SECTION_PATH[1] in callback_settings:
        return callback_settings[SECTION_PATH[1]], ".".join(SECTION_PATH)
    if "stratum" in document:
        return document["stratum"], "stratum"
    litellm_keys = {"model_list", "litellm_settings", "router_settings", "general_settings", "callback_settings", "environment_variables"}
    if litellm_keys & set(document):
        return {}, ".".join(SECTION_PATH)  # a gateway config without our section: defaults
    return document, "(top level)"


def read_document(path: str | os.PathLike[str]) -> Any:
    """A settings (or gateway config) file, parsed: read once, for the settings and for
    whatever else the caller takes from it (``model_list``, Redis)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read stratum settings file {file}: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{file} is not valid YAML: {exc}") from None


def settings_of(document: Any, source: str) -> StratumSettings:
    """The router settings a parsed file holds (its ``callback_settings.stratum``, its
    ``stratum`` key, or the whole of it)."""
    section, where = extract_section(document)
    return parse_settings(section, source=source, prefix=where)


def load_settings(path: str | os.PathLike[str]) -> StratumSettings:
    """Read and validate the router settings from a YAML file."""
    return settings_of(read_document(path), str(path))


def resolve_settings(
    gateway_config: str | os.PathLike[str] | None = None,
    mapping: Any = None,
    environ: Mapping[str, str] = os.environ,
    document: Any = None,
) -> tuple[StratumSettings, str]:
    """The settings in force and where they came from, in order of precedence: the file
    named by ``STRATUM_CONFIG``; the gateway's own config file (``document`` when the
    caller parsed it already); a mapping already parsed by the host
    (``litellm.callback_settings['stratum']``); the defaults."""
    named = environ.get(CONFIG_ENV)
    if named:
        return load_settings(named), named
    if gateway_config is not None and Path(gateway_config).is_file():
        if document is not None:
            return settings_of(document, str(gateway_config)), str(gateway_config)
        return load_settings(gateway_config), str(gateway_config)
    if mapping is not None:
        source = "litellm.callback_settings"
        return parse_settings(mapping, source=source, prefix=".".join(SECTION_PATH)), source
    return StratumSettings(), "defaults"

