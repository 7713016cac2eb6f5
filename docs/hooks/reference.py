"""MkDocs hook: adds the reference pages generated from msmkit's code (msmkit.reference) to the site.

A hook rather than files in docs/: the pages are built from the installed code every time, never edited
by hand and never committed, so they cannot fall behind the code.
"""

from __future__ import annotations

from mkdocs.structure.files import File, Files


def on_files(files: Files, config) -> Files:
    from msmkit.reference import reference_pages

    for path, text in reference_pages().items():
        files.append(File.generated(config, path, content=text))
    return files
