"""Call audio (issue 15): both sides of a call on one timeline, Opus in Ogg, sealed in chunks
under the session's data key and committed to its hash chain by audio records."""
