"""The outside world on loopback: marketplaces, SFTP drop, ERP, WMS, carriers, CS desk.

Never imports `connectors`: the two sides implement each platform's protocol independently.
"""
