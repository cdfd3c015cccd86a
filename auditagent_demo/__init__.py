"""Local protocol simulators for the providers LiveKit plugins talk to.

Each simulator speaks the provider's real wire protocol so the real plugin objects can be
pointed at it through their public endpoint options; all of them play back the same
scripted conversation (`script.default_scenario()`). `systems.py` runs the four seed systems
(real `AgentSession`s with the real plugins) through them, for the tests and `auditagent demo`.

Shipped in every install, usable with the `demo` extra (`pip install "auditagent[demo]"`), which
brings the provider plugins; the recorder itself never imports this package.
"""

from __future__ import annotations

from .script import (
    AgentReply,
    Scenario,
    SpeechSegmenter,
    ToolCall,
    UserLine,
    default_scenario,
    find_segments,
    user_audio_16k,
    user_audio_24k,
    user_audio_48k,
    user_utterance,
)

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
