"""``coursemart status`` and ``coursemart config``: what is loaded, what waits, what is set."""

from __future__ import annotations

from coursemart.cli.app import app, say, settings
from coursemart.cli.options import LakeOption, WarehouseOption


@app.command()
def status(*, lake: LakeOption = None, warehouse: WarehouseOption = None) -> None:
    """Show the latest loads, the batches waiting to be loaded and the rows per table."""
    from coursemart import status as statuses
    from coursemart.warehouse import Warehouse

    config = settings()
    target = Warehouse.from_url(warehouse or config.warehouse_url)  # parsed once, here
    report = statuses.status(lake or config.lake, target)
    say(statuses.render(report))


@app.command()
def config() -> None:
    """Show the configuration in force, with passwords and keys masked."""
    for name, value in settings().display().items():
        say(f"{name} = {value}")
