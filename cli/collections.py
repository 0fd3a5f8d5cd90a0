"""`assay collections`: test-case collections over REST (import a CSV or JSONL file)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.evals.spec import rows_of
from cli.rest import Assay, CliError


@click.group()
def collections() -> None:
    """Collections of test cases of the key's project."""


@collections.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="the collection (default: the file's name without its extension)")
@click.option("--base-url", default=None, help="the Assay (default: $ASSAY_BASE_URL or the config file)")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
def import_command(file: Path, name: str | None, base_url: str | None, as_json: bool) -> None:
    """Add the rows of FILE (.csv with a header row, or .jsonl) to a collection, creating it when new.
    Rows the collection already holds are skipped, so importing the same file twice adds nothing."""
    if file.suffix.lower() not in (".csv", ".jsonl"):
        raise click.BadParameter("use a .csv or .jsonl file", param_hint="FILE")
    try:
        rows = rows_of(file.name.lower(), file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    name = name or file.stem
    api = Assay.connect(base_url)
    found = api.find("collections", name)
    created = found is None
    collection = found or api.post("collections", {"name": name})
    added = len(api.upload_rows(collection["id"], rows, skip_existing=True))
    total = api.get(f"collections/{collection['id']}").get("variables_count", added)
    result = {"id": collection["id"], "name": name, "created": created, "added": added, "rows": total}
    if as_json:
        click.echo(json.dumps(result))
    else:
        verb = "created" if created else "updated"
        click.echo(f"collection {collection['id']} {name!r} {verb}: {added} row(s) added, {total} in all")
