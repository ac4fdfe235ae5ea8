"""Take the node's secrets out of the process environment before anything can start a process.

Importing the node's dependencies already starts helper processes that inherit the environment
(pycryptodome's ctypes backend runs ``file -b`` through ``platform.architecture()`` when
``eth_account`` is imported; ``ctypes.util.find_library`` runs ``ldconfig``). So ``python -m app``
calls :func:`take_node_secrets` first, before it imports anything else of the node, and hands
the values to the settings directly. Standard library only: importing this module starts
nothing.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["NODE_SECRETS", "take_node_secrets"]

#: The node's secrets (environment variable names, matched in any case).
NODE_SECRETS = ("REG_SECRET", "SECP256K1_PRIVHEX", "SPLATTER_API_TOKEN")


def take_node_secrets(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Removes the :data:`NODE_SECRETS` variables, and every other variable holding one of
    their values, from ``environ`` (``os.environ`` when omitted).

    Returns the secrets as settings field names (lower case) and values; empty variables count
    as unset. Never logs or returns any other variable.
    """
    environ = os.environ if environ is None else environ
    found = {name: value for name, value in environ.items() if name.upper() in NODE_SECRETS}
    values = {value for value in found.values() if value}
    doomed = [n for n, v in environ.items() if n.upper() in NODE_SECRETS or (v and v in values)]
    for name in doomed:
        del environ[name]
    return {name.lower(): value for name, value in found.items() if value}
