"""Large values by reference, through ProxyStore data stores.

Nothing is imported here, so that a worker importing `data.policy` (every task's
shim does) does not pay for ProxyStore. The modules, lowest first:

- `schemas`: the `data:` block of a federation file (no ProxyStore);
- `policy`: what travels to workers with each task;
- `stores`: the declared stores as ProxyStore stores, and colmena-fx's proxies;
- `holds`: how long each stored value lives;
- `manager`: the client's side (`DataManager`, `Federation.data`);
- `check`: `colmena-fx data check`.
"""
