"""`/docs`: a human API reference rendered on the server from the OpenAPI document.

No JavaScript and nothing from a CDN: one HTML page and a stylesheet shipped in the package.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"


def _text(value: str) -> str:
    """Escaped prose, with `backticks` shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(value))


def _schema_text(schema: Any) -> str:
    return html.escape(json.dumps(schema, indent=2))


def render(document: dict[str, Any]) -> str:
    info = document["info"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(info['title'])}</title>",
        '<link rel="stylesheet" href="/docs/docs.css">',
        "</head><body>",
        f"<h1>{html.escape(info['title'])} <small>{html.escape(info['version'])}</small></h1>",
        f"<p>{_text(info['description'])}</p>",
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Authenticate with '
        "<code>Authorization: Bearer &lt;access_token&gt;</code>.</p>",
        "<nav><ul>",
    ]
    operations = [
        (path, method, op)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    ]
    for path, method, op in operations:
        parts.append(
            f'<li><a href="#{op["operationId"]}"><span class="m m-{method}">{method.upper()}</span>'
            f" {html.escape(path)}</a> {_text(op['summary'])}</li>"
        )
    parts.append("</ul></nav>")
    for path, method, op in operations:
        parts.append(f'<section id="{op["operationId"]}">')
        parts.append(
            f'<h2><span class="m m-{method}">{method.upper()}</span> '
            f"<code>{html.escape(path)}</code></h2>"
        )
        parts.append(f"<p>{_text(op['summary'])} {_text(op['description'])}</p>")
        params = op.get("parameters", [])
        if params:
            parts.append("<table><tr><th>Parameter</th><th>In</th><th>Schema</th><th></th></tr>")
            for p in params:
                parts.append(
                    f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                    f"<td><code>{html.escape(json.dumps(p['schema']))}</code></td>"
                    f"<td>{_text(p.get('description', ''))}</td></tr>"
                )
            parts.append("</table>")
        body = op.get("requestBody")
        if body:
            schema = body["content"]["application/json"]["schema"]
            parts.append(f"<h3>Request body</h3><pre>{_schema_text(schema)}</pre>")
        parts.append("<h3>Responses</h3><dl>")
        for status, response in op["responses"].items():
            parts.append(f"<dt>{status}</dt><dd>{_text(response['description'])}")
            content = response.get("content", {})
            for media, spec in content.items():
                if "$ref" not in spec["schema"]:
                    parts.append(f"<pre>{html.escape(media)}\n{_schema_text(spec['schema'])}</pre>")
            parts.append("</dd>")
        parts.append("</dl></section>")
    parts.append("<h2>Error body</h2>")
    parts.append(f"<pre>{_schema_text(document['components']['schemas']['Error'])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
