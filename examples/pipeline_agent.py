"""Pipeline agent (Deepgram nova-3 -> GPT-4o -> Cartesia), recorded by auditagent.

    export LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=...
    export DEEPGRAM_API_KEY=... OPENAI_API_KEY=... CARTESIA_API_KEY=...
    export AUDITAGENT_DATABASE_URL=postgresql://...   # unset: embedded Postgres
    auditagent keys init && auditagent db upgrade    # once
    python examples/pipeline_agent.py dev

Set STT=whisper to swap Deepgram for OpenAI whisper-1 (one line changes, as in the course).
The three auditagent lines are marked `# auditagent`.
"""

from __future__ import annotations

import os

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, RunContext, function_tool
from livekit.plugins import cartesia, deepgram, openai

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
    protect_logs()  # auditagent: keeps transcript text out of the logs
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    stt = (
        openai.STT(model="whisper-1")
        if os.environ.get("STT") == "whisper"
        else deepgram.STT(model="nova-3")
    )
    session: AgentSession[None] = AgentSession(
        stt=stt, llm=openai.LLM(model="gpt-4o"), tts=cartesia.TTS()
    )
    await record_session(ctx, session, tenant="acme", participant=participant.identity)  # audit
    await session.start(agent=Receptionist(), room=ctx.room)


if __name__ == "__main__":
    from livekit.agents import cli

    cli.run_app(server)
