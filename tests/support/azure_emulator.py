#!/usr/bin/env python3
"""Drives the Azurite Blob emulator (npm: azurite) for the collection tests, with the Azure SDK
for Python (PyPI: azure-storage-blob).

Reads one JSON command on stdin, prints one JSON answer:
  {"op": "setup", "endpoint": URL, "containers": [...]}          creates the containers
  {"op": "append", "endpoint": URL, "container": C, "blob": B, "text": T}
      appends T to the append blob B (created when missing)
  {"op": "sas", "endpoint": URL}      answers {"sas": token} for listing and reading every container
"""
import datetime
import json
import sys

from azure.storage.blob import (AccountSasPermissions, BlobServiceClient, ResourceTypes,
                                generate_account_sas)

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def main():
    cmd = json.load(sys.stdin)
    conn = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={cmd['endpoint']};"
    svc = BlobServiceClient.from_connection_string(conn)
    op = cmd["op"]
    if op == "setup":
        for c in cmd["containers"]:
            svc.create_container(c)
        print(json.dumps({"containers": cmd["containers"]}))
    elif op == "append":
        blob = svc.get_blob_client(cmd["container"], cmd["blob"])
        if not blob.exists():
            blob.create_append_blob()
        blob.append_block(cmd["text"].encode())
        print(json.dumps({"size": blob.get_blob_properties().size}))
    elif op == "sas":
        sas = generate_account_sas(ACCOUNT, KEY, resource_types=ResourceTypes(container=True, object=True),
                                   permission=AccountSasPermissions(read=True, list=True),
                                   expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
        print(json.dumps({"sas": sas}))
    else:
        sys.exit(f"unknown op {op}")


if __name__ == "__main__":
    main()
