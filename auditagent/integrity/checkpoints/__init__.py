"""Signed checkpoints kept outside the database, and the verifier that holds the database to them.

Whoever controls the database (a superuser can disable the append-only triggers) could rewrite
a whole session chain consistently or delete a session; only a commitment stored in another
trust domain catches that. A checkpoint is a C2SP tlog-checkpoint-style signed note::

    auditagent/session/<uuid>          <- origin
    <event count>
    <base64 head hash>
    time <RFC 3339 UTC>
                                       <- blank line ends the signed body
    — auditagent <base64(key id (4 bytes) || Ed25519 signature (64 bytes))>

The global checkpoint (``auditagent/global``) commits to every session at once: its size is
the number of sessions, its hash is ``SHA-256("auditagent/checkpoint-manifest/v1\\0" ||
manifest)`` where the manifest (written next to it as ``<name>.manifest``) has one line
``<session uuid> <count> <base64 head or ->`` per session in uuid order; its extension lines
carry the deletion-record chain (``deletions <count> <base64 head>``), the retention change
log (``changes <count> <base64 head>``: policy and legal-hold changes) and the hash of the
previous global checkpoint (``prev <base64>``), so a removed or reordered global checkpoint is
caught too, as CloudTrail's digest files chain to each other. Retention runs and erasures write
one when they finish; each policy or hold change writes a small ``auditagent/retention-changes``
note (size = entries, hash = head of the change log).

The key id is ``SHA-256(name || "\\n" || 0x01 || public key)[:4]`` as in C2SP signed notes.
Checkpoints go to a :class:`CheckpointSink`; :class:`DirectorySink` writes one file per
checkpoint (created exclusively, fsynced) into ``settings.resolved_checkpoint_dir``.
"""

from __future__ import annotations

from auditagent.integrity.checkpoints.note import (
    CHANGES_ORIGIN,
    GLOBAL_ORIGIN,
    KEY_NAME,
    MANIFEST_SUFFIX,
    NOTE_SUFFIX,
    SESSION_ORIGIN_PREFIX,
    Checkpoint,
    CheckpointInvalid,
    encode_note,
    key_id,
    manifest_lines,
    manifest_root,
    parse_manifest,
    parse_note,
)
from auditagent.integrity.checkpoints.sink import (
    CheckpointSink,
    DirectorySink,
    default_sink,
    session_checkpoint_name,
)
from auditagent.integrity.checkpoints.verify import (
    VerifyReport,
    load_public_key,
    verify_checkpoints,
)
from auditagent.integrity.checkpoints.write import (
    ClosedSessionHead,
    SessionCommitment,
    on_close_writer,
    session_commitment,
    session_commitments,
    write_changes_checkpoint,
    write_global_checkpoint,
    write_session_checkpoint,
)

__all__ = [
    "CHANGES_ORIGIN",
    "GLOBAL_ORIGIN",
    "KEY_NAME",
    "MANIFEST_SUFFIX",
    "NOTE_SUFFIX",
    "SESSION_ORIGIN_PREFIX",
    "Checkpoint",
    "CheckpointInvalid",
    "CheckpointSink",
    "ClosedSessionHead",
    "DirectorySink",
    "SessionCommitment",
    "VerifyReport",
    "default_sink",
    "encode_note",
    "key_id",
    "load_public_key",
    "manifest_lines",
    "manifest_root",
    "on_close_writer",
    "parse_manifest",
    "parse_note",
    "session_checkpoint_name",
    "session_commitment",
    "session_commitments",
    "verify_checkpoints",
    "write_changes_checkpoint",
    "write_global_checkpoint",
    "write_session_checkpoint",
]
