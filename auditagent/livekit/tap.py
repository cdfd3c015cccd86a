"""What the agent generated vs what was heard: the output transcription chain.

LiveKit keeps the full text of an interrupted reply only in locals of its reply task, and a
TranscriptSynchronizer stores only the played prefix. So on the first ``agent_state_changed``
(outputs are wired, no speech yet) the capture puts a pass-through :class:`GeneratedTextTap` at
the head of ``session.output.transcription``; it forwards every call unchanged and keeps each
reply's generated text, which becomes ``generated_text`` when it differs from what was heard.
Setting the output detaches and re-attaches the chain behind it once, which makes a
synchronizer rotate its empty segment. If an application replaces
``session.output.transcription`` later, the tap is gone and ``generated_text`` stays ``None``.

Without a synchronizer an interrupted reply's stored text is the full generated text:
:func:`synchronized` tells translate so, and the record says ``heard_text_known=False``.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any

from livekit.agents.voice.io import TextOutput

from . import _compat as lk
from .fields import getattr_safe


class GeneratedTextTap(TextOutput):
    """A pass-through at the head of ``session.output.transcription`` that keeps the text the
    agent generated, before any TranscriptSynchronizer cuts it to what was played.

    It forwards every call unchanged; its own bookkeeping is a list append and cannot raise
    into the chain. Segments are kept in a small ring (one per reply) for ``translate``.
    """

    def __init__(self, *, next_in_chain: TextOutput) -> None:
        super().__init__(label="auditagent.GeneratedTextTap", next_in_chain=next_in_chain)
        self._current: list[str] = []
        self.segments: deque[str] = deque(maxlen=32)

    async def capture_text(self, text: str) -> None:
        try:  # noqa: SIM105 - a context manager costs more than the append
            self._current.append(text)
        except Exception:
            pass
        if self.next_in_chain is not None:
            await self.next_in_chain.capture_text(text)

    def flush(self) -> None:
        try:
            if self._current:
                self.segments.append("".join(self._current))
                self._current = []
        except Exception:
            pass
        if self.next_in_chain is not None:
            self.next_in_chain.flush()

    def generated_for(self, heard: str) -> str | None:
        """The most recent generated segment that the heard text is a strict prefix of."""
        pending = ["".join(self._current)] if self._current else []
        want = _norm(heard)
        for seg in reversed([*self.segments, *pending]):
            got = _norm(seg)
            if got.startswith(want) and len(got) > len(want):
                with contextlib.suppress(ValueError):
                    self.segments.remove(seg)
                return seg
        return None


def _norm(text: str) -> str:
    return " ".join(text.split())


def install_tap(session: Any) -> GeneratedTextTap | None:
    """Put the tap at the head of the transcription output: O(1), no I/O. None when the
    session has no transcription output (then nothing is truncated for us to miss)."""
    out = session.output
    current = out.transcription
    if current is None:
        return None
    tap = GeneratedTextTap(next_in_chain=current)
    # The setter detaches and re-attaches the chain behind the tap; with no speech yet that
    # only makes a TranscriptSynchronizer rotate its (empty) segment.
    out.transcription = tap
    return tap


def synchronized(audio_out: Any, text_out: Any) -> bool:
    """Whether an enabled TranscriptSynchronizer sits in the output chain."""
    kinds = lk.synchronizer_kinds()
    for head in (audio_out, text_out):
        node, depth = head, 0
        while node is not None and depth < 16:
            if isinstance(node, kinds):
                return lk.synchronizer_enabled(node)
            node = getattr_safe(node, "next_in_chain")
            depth += 1
    return False
