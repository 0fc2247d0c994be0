"""Content: what staff write (CSV, JSONL, Markdown) → checked entries → a published index.

CONTRACT:
    Entry, load_content(paths) -> list[Entry], ContentError (entries.py): the staff formats,
        validated with file/row/field messages; nothing is published from a file with errors
    ContentPublisher (publishing.py): all-or-nothing import as a new index version, rollback
    bundles.py: Ed25519-signed content bundles for a fleet of kiosks
    AuditLog (audit.py): who changed what content, and when
"""
