"""The read path: open a session's sealed records, shape transcripts, build and check bundles.

``decrypt`` opens records (and recomputes the chain in the same pass), ``transcript`` shapes
them, ``bundle`` signs and checks offline evidence. SQL stays in ``auditagent.store.reader``.
"""
