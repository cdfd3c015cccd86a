"""Moved to the `auditagent_demo` package (installed with `pip install "auditagent[demo]"`).

The old import paths keep working: each submodule here is the `auditagent_demo` module itself,
and the package's names are looked up there on first use, so importing `auditagent` never pulls
in the simulators' dependencies.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentReply",
    "Scenario",
    "SpeechSegmenter",
    "ToolCall",
    "UserLine",
    "default_scenario",
    "find_segments",
    "user_audio_16k",
    "user_audio_24k",
    "user_audio_48k",
    "user_utterance",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import auditagent_demo

    return getattr(auditagent_demo, name)
