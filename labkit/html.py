"""Self-contained HTML reports of executed notebooks: every image inline, no script or font from a CDN, and no
part that only works beside a running kernel.

A cell tagged `live-view` (the live Netron view) shows a frame served by the kernel; in a report that is a dead
frame, so its output is left out and the static picture the notebook renders below it stands in.
"""

from __future__ import annotations

from pathlib import Path

from labkit.files import atomic_write_text

TEMPLATES = Path(__file__).parent / "templates"
LIVE_VIEW = "live-view"  # the tag of cells whose output needs the running kernel


def export_html(notebook: Path, html_path: Path) -> Path:
    """Convert an executed notebook to one offline HTML file (nbconvert, images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)], embed_images=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_all_outputs_tags={LIVE_VIEW}), enabled=True)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    return atomic_write_text(Path(html_path), body)
