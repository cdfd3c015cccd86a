"""Hand-written scripted fakes of LiveKit Agents components, for tests without network."""
