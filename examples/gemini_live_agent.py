"""Gemini Live agent, recorded by auditagent.

    export LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... GOOGLE_API_KEY=...
    auditagent keys init && auditagent db upgrade    # once
    python examples/gemini_live_agent.py dev

Gemini Live reads its transcription settings when its session connects. A model built with
input or output transcription off has it turned on by the recorder before that (and the record
says so); passing both explicitly, as here, keeps them on whatever the plugin's defaults become.
"""

from __future__ import annotations

from google.genai import types
from livekit.agents import Agent, AgentServer, AgentSession, JobContext, RunContext, function_tool
from livekit.plugins import google

from auditagent import protect_logs, record_session  # auditagent

server = AgentServer()


class Receptionist(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful clinic receptionist.")

    @function_tool
    async def lookup_appointment(self, context: RunContext, reference: str) -> str:
        """Look up an appointment by its booking reference."""
        return f"Appointment {reference}: Tuesday 10:30 with Dr. Rivera."


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    protect_logs()  # auditagent
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    model = google.realtime.RealtimeModel(
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    session: AgentSession[None] = AgentSession(llm=model)
    await record_session(ctx, session, tenant="acme", participant=participant.identity)  # audit
    await session.start(agent=Receptionist(), room=ctx.room)


if __name__ == "__main__":
    from livekit.agents import cli

    cli.run_app(server)
