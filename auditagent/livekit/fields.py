"""Safe reads of LiveKit objects, and LiveKit's float timestamps as datetimes.

Translation runs on the writer, long after the event: any read here may meet an object LiveKit
changed shape of, so each returns None rather than raising.
"""

from __future__ import annotations

import importlib.metadata
import logging
from datetime import datetime, timezone
from typing import Any

from ..records import ModelInfo
from . import _compat as lk

logger = logging.getLogger("auditagent.capture")


def dt(t: float | None) -> datetime | None:
    if t is None:
        return None
    try:
        return datetime.fromtimestamp(t, tz=timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def utc(t: float) -> datetime:
    return dt(t) or datetime.now(timezone.utc)


def getattr_safe(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def safe_str(v: Any) -> str | None:
    if v is None:
        return None
    try:
        return str(v)
    except Exception:
        return None


def model_info(obj: Any) -> ModelInfo | None:
    if obj is None:
        return None
    model = safe_str(getattr_safe(obj, "model"))
    provider = safe_str(getattr_safe(obj, "provider"))
    return ModelInfo(model=model, provider=provider)


def is_given(v: Any) -> bool:
    from livekit.agents.utils import is_given as lk_is_given

    return v is not None and lk_is_given(v)


def agent_attr(session: Any, agent: Any, name: str) -> Any:
    """The component an agent actually uses: its own override, else the session's."""
    if agent is not None:
        v = getattr_safe(agent, name)
        if is_given(v):
            return v
    return getattr_safe(session, name)


def current_agent(session: Any) -> Any:
    return lk.current_agent(session)


def agent_name(agent: Any) -> str | None:
    """An agent's name: its label (LiveKit's label is its id), else its class name."""
    if agent is None:
        return None
    label = safe_str(getattr_safe(agent, "label")) or safe_str(getattr_safe(agent, "id"))
    return label or type(agent).__name__


def text_of(msg: Any) -> str:
    try:
        t = msg.text_content
        return t if isinstance(t, str) else ""
    except Exception:
        return ""


def sdk_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for dist in importlib.metadata.distributions():
            name = (dist.metadata["Name"] or "").lower()
            if name in ("livekit-agents", "livekit", "auditagent") or name.startswith(
                "livekit-plugins-"
            ):
                out[name] = dist.version
    except Exception:
        logger.debug("could not list installed versions", exc_info=True)
    return out
