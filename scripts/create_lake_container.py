"""Create the blob container of an abfs:// lake, then run the command given: for compose's Azurite
profile, where the emulator starts empty. Retries while the storage is still starting.

    python create_lake_container.py COMMAND ARGS...    (COURSEMART_LAKE=abfs://container/prefix,
                                                         AZURE_STORAGE_CONNECTION_STRING=...)
"""

from __future__ import annotations

import os
import sys
import time

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

ATTEMPTS = 60


def create_container(connection_string: str, name: str) -> None:
    service = BlobServiceClient.from_connection_string(connection_string)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            service.create_container(name)
            return
        except ResourceExistsError:
            return
        except Exception as exc:  # noqa: BLE001 - the emulator may not be listening yet
            if attempt == ATTEMPTS:
                sys.exit(f"create_lake_container: cannot create container {name!r}: {exc}")
            time.sleep(1)


if __name__ == "__main__":
    lake = os.environ["COURSEMART_LAKE"]
    create_container(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"], lake.split("://")[1].split("/")[0]
    )
    os.execvp(sys.argv[1], sys.argv[1:])
