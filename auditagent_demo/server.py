"""Run every provider simulator on 127.0.0.1 and build real plugins pointed at them.

    async with SimulatorServer() as sim:
        stt, llm, tts = pipeline_deepgram(sim)
        model = openai_realtime(sim)
        gemini = gemini_live(sim)

Each simulator gets its own aiohttp app and free port; Gemini Live is served over TLS with
a certificate generated at start-up (google-genai always dials wss when an API key is
set), and its trust is passed to the client through `HttpOptions.async_client_args`, so
nothing process-wide (SSL_CERT_FILE) changes.
"""

from __future__ import annotations

import contextlib
import importlib
import ssl
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .cartesia import CartesiaSimulator
from .deepgram import DeepgramSimulator
from .gemini_live import GeminiLiveSimulator
from .openai import OpenAISimulator
from .openai_realtime import OpenAIRealtimeSimulator
from .script import Scenario, default_scenario

if TYPE_CHECKING:
    from livekit.agents import llm, stt, tts

HOST = "127.0.0.1"
DUMMY_KEY = "sim-dummy-key"


class SimulatorServer:
    """Async context manager serving all simulators; attributes hold their base URLs."""

    def __init__(self, scenario: Scenario | None = None, *, realtime_pace: float = 4.0) -> None:
        self.scenario = scenario or default_scenario()
        self.deepgram = DeepgramSimulator(self.scenario)
        self.openai = OpenAISimulator(self.scenario)
        self.cartesia = CartesiaSimulator(self.scenario)
        self.openai_realtime = OpenAIRealtimeSimulator(self.scenario, pace=realtime_pace)
        self.gemini = GeminiLiveSimulator(self.scenario, pace=realtime_pace)
        self.deepgram_url = ""
        self.openai_url = ""
        self.cartesia_url = ""
        self.openai_realtime_url = ""
        self.gemini_url = ""
        self.gemini_ca_file = ""
        self._runners: list[web.AppRunner] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    async def _serve(self, register: Any, *, ssl_context: ssl.SSLContext | None = None) -> int:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        register(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, HOST, 0, ssl_context=ssl_context)
        await site.start()
        # aiohttp exposes the bound port only through the site's asyncio server
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        port: int = sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        try:
            port = await self._serve(self.deepgram.register)
            self.deepgram_url = f"http://{HOST}:{port}/v1/listen"
            port = await self._serve(self.openai.register)
            self.openai_url = f"http://{HOST}:{port}/v1"
            port = await self._serve(self.cartesia.register)
            self.cartesia_url = f"http://{HOST}:{port}"
            port = await self._serve(self.openai_realtime.register)
            self.openai_realtime_url = f"http://{HOST}:{port}/v1"

            from auditagent.integrity.crypto import self_signed_certificate

            cert_pem, key_pem = self_signed_certificate(["localhost", HOST])
            self._tmp = tempfile.TemporaryDirectory(prefix="auditagent-sim-")
            cert = Path(self._tmp.name) / "gemini-cert.pem"
            key = Path(self._tmp.name) / "gemini-key.pem"
            cert.write_bytes(cert_pem)
            key.write_bytes(key_pem)
            key.chmod(0o600)
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(cert, key)
            port = await self._serve(self.gemini.register, ssl_context=server_ctx)
            self.gemini_url = f"https://{HOST}:{port}"
            self.gemini_ca_file = str(cert)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only the Gemini simulator's certificate."""
        return ssl.create_default_context(cafile=self.gemini_ca_file)

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


# --- factories: real plugin objects pointed at a running SimulatorServer -----------------


PLUGIN_MODULES = (
    "livekit.plugins.deepgram",
    "livekit.plugins.openai",
    "livekit.plugins.cartesia",
    "livekit.plugins.google",
    "google.genai.types",
)


def import_plugins() -> None:
    """Import every provider plugin the factories use, up front.

    The factories import them on first use, which inside a running call holds the event loop
    for well over a second (the OpenAI and Google SDKs); an agent worker imports its plugins
    at start for the same reason."""
    for name in PLUGIN_MODULES:
        importlib.import_module(name)


def deepgram_stt(sim: SimulatorServer, **kwargs: Any) -> stt.STT[Any]:
    from livekit.plugins import deepgram

    return deepgram.STT(api_key=DUMMY_KEY, base_url=sim.deepgram_url, **kwargs)


def openai_llm(sim: SimulatorServer, **kwargs: Any) -> llm.LLM[Any]:
    from livekit.plugins import openai

    kwargs.setdefault("model", "gpt-4o-mini")
    return openai.LLM(api_key=DUMMY_KEY, base_url=sim.openai_url, **kwargs)


def whisper_stt(sim: SimulatorServer, **kwargs: Any) -> stt.STT[Any]:
    from livekit.plugins import openai

    kwargs.setdefault("model", "whisper-1")
    return openai.STT(api_key=DUMMY_KEY, base_url=sim.openai_url, use_realtime=False, **kwargs)


def cartesia_tts(sim: SimulatorServer, **kwargs: Any) -> tts.TTS[Any]:
    from livekit.plugins import cartesia

    return cartesia.TTS(api_key=DUMMY_KEY, base_url=sim.cartesia_url, **kwargs)


def pipeline_deepgram(sim: SimulatorServer) -> tuple[stt.STT[Any], llm.LLM[Any], tts.TTS[Any]]:
    """Deepgram streaming STT + OpenAI chat LLM + Cartesia TTS."""
    return deepgram_stt(sim), openai_llm(sim), cartesia_tts(sim)


def pipeline_whisper(sim: SimulatorServer) -> tuple[stt.STT[Any], llm.LLM[Any], tts.TTS[Any]]:
    """OpenAI whisper-1 (non-streaming; wrap with a VAD via StreamAdapter or an
    AgentSession vad) + OpenAI chat LLM + Cartesia TTS."""
    return whisper_stt(sim), openai_llm(sim), cartesia_tts(sim)


def openai_realtime(
    sim: SimulatorServer, *, input_transcription: bool = True, **kwargs: Any
) -> llm.RealtimeModel:
    from livekit.plugins.openai import realtime

    if not input_transcription:
        kwargs["input_audio_transcription"] = None
    return realtime.RealtimeModel(api_key=DUMMY_KEY, base_url=sim.openai_realtime_url, **kwargs)


def gemini_live(
    sim: SimulatorServer,
    *,
    input_transcription: bool = True,
    output_transcription: bool = True,
    **kwargs: Any,
) -> llm.RealtimeModel:
    from google.genai import types
    from livekit.plugins.google import realtime

    if not input_transcription:
        kwargs["input_audio_transcription"] = None
    if not output_transcription:
        kwargs["output_audio_transcription"] = None
    http_options = types.HttpOptions(
        base_url=sim.gemini_url,
        # trust travels with this client only; no process-wide SSL_CERT_FILE
        async_client_args={"ssl": sim.client_ssl_context()},
    )
    return realtime.RealtimeModel(
        api_key=DUMMY_KEY, vertexai=False, http_options=http_options, **kwargs
    )
