"""OpenAI Realtime agent (gpt-4o-realtime-preview, voice alloy), recorded by auditagent.

    export LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... OPENAI_API_KEY=...
    auditagent keys init && auditagent db upgrade    # once
    python examples/openai_realtime_agent.py dev

A realtime model yields no user text unless input transcription is on; if it is off, the recorder
turns it on through the model's public update_options and records that it did.
"""

from __future__ import annotations

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, RunContext, function_tool
from livekit.plugins.openai import realtime

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
    session: AgentSession[None] = AgentSession(
        llm=realtime.RealtimeModel(model="gpt-4o-realtime-preview", voice="alloy")
    )
    await record_session(ctx, session, tenant="acme", participant=participant.identity)  # audit
    await session.start(agent=Receptionist(), room=ctx.room)


if __name__ == "__main__":
    from livekit.agents import cli

    cli.run_app(server)
