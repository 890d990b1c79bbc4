"""Self-contained HTML reports of executed notebooks: every image inline, no script or font from a CDN."""

from __future__ import annotations

from pathlib import Path

from labkit.files import atomic_write_text

TEMPLATES = Path(__file__).parent / "templates"


def export_html(notebook: Path, html_path: Path) -> Path:
    """Convert an executed notebook to one offline HTML file (nbconvert, images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)], embed_images=True)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    return atomic_write_text(Path(html_path), body)
