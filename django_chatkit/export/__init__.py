"""Export and import of conversations (issue #14): JSON Lines, Markdown, tar archives with files.

``records`` turns threads into export records (one per JSONL line) and records back into rows;
``jsonl``, ``markdown`` and ``archive`` write the formats, streaming; ``importing`` restores an
export. docs/export.md describes the format; ``schema/v1.json`` is its JSON Schema.
"""

FORMAT_VERSION = 1
